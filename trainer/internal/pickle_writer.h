// A minimal pickle emitter for the few shapes the trainer writes (torch.save
// state dicts, inf_itm's results.bin): opcodes are written as they are named,
// so each caller spells out its object. LibTorch-free.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace uniter::trainer {

class PickleWriter {
 public:
  void Proto(int version = 2) {
    out_ += '\x80';
    out_ += static_cast<char>(version);
  }
  void Global(const char* module, const char* name) { out_ += std::string("c") + module + "\n" + name + "\n"; }
  void Op(char op) { out_ += op; }
  void Str(const std::string& s) {
    out_ += 'X';
    Le(s.size(), 4);
    out_ += s;
  }
  void Int(int64_t v) {
    if (v >= 0 && v < (int64_t{1} << 31)) {
      out_ += 'J';
      Le(static_cast<uint64_t>(v), 4);
    } else {
      out_ += "\x8a\x08";
      Le(static_cast<uint64_t>(v), 8);
    }
  }
  template <class Ints>
  void IntTuple(const Ints& v) {
    Op('(');
    for (int64_t x : v) Int(x);
    Op('t');
  }
  // BINBYTES (protocol 3): a Python bytes object.
  void Bytes(std::string_view b) {
    out_ += 'B';
    Le(b.size(), 4);
    out_ += b;
  }
  // A raw run of bytes (legacy torch.save's storage section).
  void Raw(std::string_view b) { out_ += b; }
  void Int64Le(int64_t v) { Le(static_cast<uint64_t>(v), 8); }
  std::string Take() { return std::move(out_); }

 private:
  void Le(uint64_t v, int n) {
    for (int k = 0; k < n; ++k) out_ += static_cast<char>((v >> (8 * k)) & 0xFF);
  }
  std::string out_;
};

}  // namespace uniter::trainer
