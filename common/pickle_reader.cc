#include "common/pickle_reader.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <unordered_map>

#include "common/error.h"
#include "common/utf8.h"

namespace uniter {

const PyValue* PyValue::Find(std::string_view key) const {
  for (size_t i = 0; i < keys.size(); ++i)
    if (keys[i].kind == Kind::kStr && keys[i].s == key) return &values[i];
  return nullptr;
}

const char* PyValue::TypeName() const {
  switch (kind) {
    case Kind::kNone: return "None";
    case Kind::kBool: return "bool";
    case Kind::kInt: return "int";
    case Kind::kFloat: return "float";
    case Kind::kStr: return "str";
    case Kind::kBytes: return "bytes";
    case Kind::kList: return "list";
    case Kind::kTuple: return "tuple";
    case Kind::kDict: return "dict";
    case Kind::kGlobal: return "global";
    case Kind::kObject: return "object";
    case Kind::kPersistentId: return "persistent id";
  }
  return "?";
}

namespace {

// While parsing, values are shared nodes: the memo and the stack may refer to
// the same list, which later APPENDS must extend (pickle's object identity).
struct Node;
using NodePtr = std::shared_ptr<Node>;
struct Node {
  PyValue::Kind kind = PyValue::Kind::kNone;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::vector<NodePtr> items;
  std::vector<std::pair<NodePtr, NodePtr>> dict;
  NodePtr state;               // kObject after BUILD
  bool buildable = false;      // made by REDUCE of an allowed global: BUILD may target it
};

// Python 2 str: UTF-8 if it is, else Latin-1.
std::string Py2StrToUtf8(std::string_view raw) {
  if (IsValidUtf8(raw)) return std::string(raw);
  std::string out;
  for (unsigned char c : raw) AppendUtf8(c, &out);
  return out;
}

class Parser {
 public:
  Parser(std::string_view data, size_t offset, const std::string& where, const PickleLimits& limits)
      : data_(data), where_(where), limits_(limits), pos_(offset) {
    if (limits_.max_nodes == 0) limits_.max_nodes = 16 * static_cast<uint64_t>(data.size()) + 4096;
  }

  // Tears the node graph down iteratively: a hostile pickle can chain nodes
  // far deeper than the stack would survive recursive destruction, or in cycles.
  ~Parser() {
    std::vector<NodePtr> work(std::make_move_iterator(stack_.begin()), std::make_move_iterator(stack_.end()));
    for (auto& [k, v] : memo_) work.push_back(std::move(v));
    for (auto& n : graveyard_) work.push_back(std::move(n));
    for (auto& n : all_) work.push_back(std::move(n));
    stack_.clear();
    memo_.clear();
    while (!work.empty()) {
      NodePtr n = std::move(work.back());
      work.pop_back();
      if (!n) continue;
      for (auto& c : n->items) work.push_back(std::move(c));
      work.push_back(std::move(n->state));
      for (auto& [k, v] : n->dict) {
        work.push_back(std::move(k));
        work.push_back(std::move(v));
      }
      n->items.clear();
      n->dict.clear();
    }
  }

  // Every node is also held here, so none is destroyed while parsing (a
  // dropped deep chain would otherwise be freed recursively).
  NodePtr New(PyValue::Kind k) {
    auto n = std::make_shared<Node>();
    n->kind = k;
    all_.push_back(n);
    return n;
  }

  // The offset just past the STOP opcode, once Run() returned.
  size_t end() const { return end_; }

  PyValue Run() {
    while (true) {
      if (pos_ >= data_.size()) Fail("truncated pickle (no STOP opcode)");
      op_pos_ = pos_;
      const unsigned char op = static_cast<unsigned char>(data_[pos_++]);
      if (op == '.') {  // STOP
        if (stack_.size() != 1 || !marks_.empty()) Fail("malformed pickle: stack not balanced at STOP");
        uint64_t nodes = 0;
        end_ = pos_;
        return Convert(*stack_.back(), 0, &nodes);
      }
      Step(op);
    }
  }

 private:
  [[noreturn]] void Fail(const std::string& why) const {
    throw FormatError("offset " + std::to_string(op_pos_) + ": " + why, where_);
  }

  std::string_view Take(uint64_t n) {
    if (n > data_.size() - pos_) Fail("truncated pickle (needs " + std::to_string(n) + " more bytes)");
    std::string_view v = data_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  uint64_t LittleEndian(int n) {
    std::string_view b = Take(n);
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | static_cast<unsigned char>(b[k]);
    return v;
  }
  std::string_view Line() {
    const size_t nl = data_.find('\n', pos_);
    if (nl == std::string_view::npos) Fail("truncated pickle (unterminated text argument)");
    std::string_view v = data_.substr(pos_, nl - pos_);
    pos_ = nl + 1;
    return v;
  }

  NodePtr Pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) Fail("stack underflow");
    NodePtr n = std::move(stack_.back());
    stack_.pop_back();
    return n;
  }
  NodePtr& Top() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) Fail("stack underflow");
    return stack_.back();
  }
  // Pops everything above the last MARK, and the mark.
  std::vector<NodePtr> PopMark() {
    if (marks_.empty()) Fail("MARK expected");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<NodePtr> items(std::make_move_iterator(stack_.begin() + m),
                               std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return items;
  }
  void Push(NodePtr n) {
    if (stack_.size() > (1u << 24)) Fail("stack too deep");
    stack_.push_back(std::move(n));
  }
  void PushInt(int64_t v) {
    auto n = New(PyValue::Kind::kInt);
    n->i = v;
    Push(n);
  }
  void PushStr(std::string s, PyValue::Kind k = PyValue::Kind::kStr) {
    auto n = New(k);
    n->s = std::move(s);
    Push(n);
  }
  void Memoize(uint64_t idx) {
    if (stack_.empty()) Fail("PUT on empty stack");
    NodePtr& slot = memo_[idx];
    if (slot) graveyard_.push_back(std::move(slot));
    slot = stack_.back();
  }
  void Get(uint64_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) Fail("memo key " + std::to_string(idx) + " undefined");
    Push(it->second);
  }
  uint64_t ParseDecimal(std::string_view s) {
    if (s.empty() || s.size() > 19) Fail("bad decimal argument");
    uint64_t v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') Fail("bad decimal argument");
      v = v * 10 + (c - '0');
    }
    return v;
  }
  int64_t ParseSigned(std::string_view s) {
    bool neg = false;
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
      neg = s[0] == '-';
      s.remove_prefix(1);
    }
    const uint64_t u = ParseDecimal(s);
    if (u > (neg ? (uint64_t{1} << 63) : (uint64_t{1} << 63) - 1)) Fail("integer out of 64-bit range");
    return neg ? static_cast<int64_t>(0 - u) : static_cast<int64_t>(u);
  }
  // LONG1/LONG4 payload: little-endian two's complement.
  int64_t TwosComplement(std::string_view b) {
    if (b.empty()) return 0;
    if (b.size() > 8) {
      // Allowed only if the extra bytes are pure sign extension.
      const unsigned char sign = (static_cast<unsigned char>(b[7]) & 0x80) ? 0xFF : 0x00;
      for (size_t k = 8; k < b.size(); ++k)
        if (static_cast<unsigned char>(b[k]) != sign) Fail("integer out of 64-bit range");
      b = b.substr(0, 8);
    }
    uint64_t v = 0;
    for (size_t k = b.size(); k-- > 0;) v = (v << 8) | static_cast<unsigned char>(b[k]);
    if (b.size() < 8 && (static_cast<unsigned char>(b.back()) & 0x80)) v |= ~uint64_t{0} << (8 * b.size());
    return static_cast<int64_t>(v);
  }
  // Protocol 0 STRING argument: a Python repr, 'x' or "x", with escapes.
  std::string DecodeReprString(std::string_view s) {
    if (s.size() < 2 || (s[0] != '\'' && s[0] != '"') || s.back() != s[0]) Fail("bad STRING argument");
    s = s.substr(1, s.size() - 2);
    std::string out;
    for (size_t k = 0; k < s.size(); ++k) {
      if (s[k] != '\\') { out.push_back(s[k]); continue; }
      if (++k >= s.size()) Fail("bad escape in STRING");
      const char c = s[k];
      switch (c) {
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case 'r': out.push_back('\r'); break;
        case 'a': out.push_back('\a'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'v': out.push_back('\v'); break;
        case '\\': case '\'': case '"': out.push_back(c); break;
        case '\n': break;
        case 'x': {
          if (k + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[k + 1])) ||
              !std::isxdigit(static_cast<unsigned char>(s[k + 2])))
            Fail("bad \\x escape in STRING");
          out.push_back(static_cast<char>(std::stoi(std::string(s.substr(k + 1, 2)), nullptr, 16)));
          k += 2;
          break;
        }
        default:
          if (c >= '0' && c <= '7') {
            int v = 0, n = 0;
            while (n < 3 && k < s.size() && s[k] >= '0' && s[k] <= '7') v = v * 8 + (s[k++] - '0'), ++n;
            --k;
            out.push_back(static_cast<char>(v & 0xFF));
          } else {
            out.push_back('\\');
            out.push_back(c);
          }
      }
    }
    return out;
  }
  // Protocol 0 UNICODE argument: raw-unicode-escape.
  std::string DecodeRawUnicodeEscape(std::string_view s) {
    std::string out;
    for (size_t k = 0; k < s.size(); ++k) {
      const unsigned char c = s[k];
      if (c == '\\' && k + 1 < s.size() && (s[k + 1] == 'u' || s[k + 1] == 'U')) {
        const size_t n = s[k + 1] == 'u' ? 4 : 8;
        if (k + 2 + n > s.size()) Fail("bad \\u escape in UNICODE");
        uint32_t cp = 0;
        for (size_t d = 0; d < n; ++d) {
          const char h = s[k + 2 + d];
          cp <<= 4;
          if (h >= '0' && h <= '9') cp |= h - '0';
          else if (h >= 'a' && h <= 'f') cp |= h - 'a' + 10;
          else if (h >= 'A' && h <= 'F') cp |= h - 'A' + 10;
          else Fail("bad \\u escape in UNICODE");
        }
        if (cp > 0x10FFFF) Fail("bad code point in UNICODE");
        AppendUtf8(cp, &out);
        k += 1 + n;
      } else {
        AppendUtf8(c, &out);  // the other bytes are Latin-1
      }
    }
    return out;
  }

  void Step(unsigned char op) {
    using K = PyValue::Kind;
    switch (op) {
      case 0x80: {  // PROTO
        const int v = static_cast<unsigned char>(Take(1)[0]);
        if (v > 5) Fail("unsupported pickle protocol " + std::to_string(v));
        return;
      }
      case 0x95: Take(8); return;  // FRAME: a length hint only
      case '(':  // MARK
        if (marks_.size() >= static_cast<size_t>(limits_.max_depth)) Fail("too many nested MARKs");
        marks_.push_back(stack_.size());
        return;
      case '0': graveyard_.push_back(Pop()); return;  // POP
      case '1':                                       // POP_MARK
        for (auto& n : PopMark()) graveyard_.push_back(std::move(n));
        return;
      case '2': Push(Top()); return;                       // DUP
      case 'N': Push(New(K::kNone)); return;
      case 0x88: case 0x89: {  // NEWTRUE, NEWFALSE
        auto n = New(K::kBool);
        n->b = op == 0x88;
        Push(n);
        return;
      }
      case 'I': {  // INT (text); I01/I00 are True/False
        std::string_view l = Line();
        if (l == "01" || l == "00") {
          auto n = New(K::kBool);
          n->b = l == "01";
          Push(n);
        } else {
          PushInt(ParseSigned(l));
        }
        return;
      }
      case 'L': {  // LONG (text, "123L")
        std::string_view l = Line();
        if (!l.empty() && l.back() == 'L') l.remove_suffix(1);
        PushInt(ParseSigned(l));
        return;
      }
      case 'J': PushInt(static_cast<int32_t>(static_cast<uint32_t>(LittleEndian(4)))); return;  // BININT
      case 'K': PushInt(static_cast<int64_t>(LittleEndian(1))); return;                         // BININT1
      case 'M': PushInt(static_cast<int64_t>(LittleEndian(2))); return;                         // BININT2
      case 0x8a: { const uint64_t n = LittleEndian(1); PushInt(TwosComplement(Take(n))); return; }  // LONG1
      case 0x8b: {  // LONG4
        const int64_t n = static_cast<int32_t>(static_cast<uint32_t>(LittleEndian(4)));
        if (n < 0) Fail("negative LONG4 length");
        PushInt(TwosComplement(Take(static_cast<uint64_t>(n))));
        return;
      }
      case 'F': {  // FLOAT (text)
        const std::string l(Line());
        char* end = nullptr;
        const double v = std::strtod(l.c_str(), &end);
        if (l.empty() || end != l.c_str() + l.size()) Fail("bad FLOAT argument");
        auto n = New(K::kFloat);
        n->f = v;
        Push(n);
        return;
      }
      case 'G': {  // BINFLOAT: big-endian IEEE double
        std::string_view b = Take(8);
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | static_cast<unsigned char>(b[k]);
        auto n = New(K::kFloat);
        std::memcpy(&n->f, &bits, 8);
        Push(n);
        return;
      }
      case 'S': PushStr(Py2StrToUtf8(DecodeReprString(Line()))); return;  // STRING
      case 'T': {  // BINSTRING (signed 4-byte length)
        const int64_t n = static_cast<int32_t>(static_cast<uint32_t>(LittleEndian(4)));
        if (n < 0) Fail("negative BINSTRING length");
        PushStr(Py2StrToUtf8(Take(static_cast<uint64_t>(n))));
        return;
      }
      case 'U': PushStr(Py2StrToUtf8(Take(LittleEndian(1)))); return;  // SHORT_BINSTRING
      case 'V': PushStr(DecodeRawUnicodeEscape(Line())); return;         // UNICODE
      case 'X': case 0x8c: case 0x8d: {  // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
        const uint64_t n = LittleEndian(op == 'X' ? 4 : op == 0x8c ? 1 : 8);
        std::string_view s = Take(n);
        if (!IsValidUtf8(s)) Fail("invalid UTF-8 in a unicode string");
        PushStr(std::string(s));
        return;
      }
      case 'B': case 'C': case 0x8e: case 0x96: {  // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
        const uint64_t n = LittleEndian(op == 'B' ? 4 : op == 'C' ? 1 : 8);
        PushStr(std::string(Take(n)), K::kBytes);
        return;
      }
      case ']': Push(New(K::kList)); return;   // EMPTY_LIST
      case ')': Push(New(K::kTuple)); return;  // EMPTY_TUPLE
      case '}': Push(New(K::kDict)); return;   // EMPTY_DICT
      case 0x8f: Push(New(K::kList)); return;  // EMPTY_SET, as a list
      case 'l': case 't': case 0x91: {  // LIST, TUPLE, FROZENSET
        auto n = New(op == 't' ? K::kTuple : K::kList);
        n->items = PopMark();
        Push(n);
        return;
      }
      case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
        const size_t count = op - 0x84;
        auto n = New(K::kTuple);
        n->items.resize(count);
        for (size_t k = count; k-- > 0;) n->items[k] = Pop();
        Push(n);
        return;
      }
      case 'd': {  // DICT
        std::vector<NodePtr> kv = PopMark();
        if (kv.size() % 2) Fail("odd number of items for DICT");
        auto n = New(K::kDict);
        for (size_t k = 0; k < kv.size(); k += 2) SetItem(*n, kv[k], kv[k + 1]);
        Push(n);
        return;
      }
      case 'a': {  // APPEND
        NodePtr v = Pop();
        NodePtr& list = Top();
        if (list->kind != K::kList) Fail("APPEND to a non-list");
        list->items.push_back(std::move(v));
        return;
      }
      case 'e': case 0x90: {  // APPENDS, ADDITEMS
        std::vector<NodePtr> vs = PopMark();
        NodePtr& list = Top();
        if (list->kind != K::kList) Fail("APPENDS to a non-list");
        for (auto& v : vs) list->items.push_back(std::move(v));
        return;
      }
      case 's': {  // SETITEM
        NodePtr v = Pop();
        NodePtr k = Pop();
        NodePtr& d = Top();
        if (d->kind != K::kDict) Fail("SETITEM on a non-dict");
        SetItem(*d, k, v);
        return;
      }
      case 'u': {  // SETITEMS
        std::vector<NodePtr> kv = PopMark();
        if (kv.size() % 2) Fail("odd number of items for SETITEMS");
        NodePtr& d = Top();
        if (d->kind != K::kDict) Fail("SETITEMS on a non-dict");
        for (size_t k = 0; k < kv.size(); k += 2) SetItem(*d, kv[k], kv[k + 1]);
        return;
      }
      case 'p': Memoize(ParseDecimal(Line())); return;  // PUT
      case 'q': Memoize(LittleEndian(1)); return;       // BINPUT
      case 'r': Memoize(LittleEndian(4)); return;       // LONG_BINPUT
      case 0x94: Memoize(memo_.size()); return;         // MEMOIZE
      case 'g': Get(ParseDecimal(Line())); return;      // GET
      case 'h': Get(LittleEndian(1)); return;           // BINGET
      case 'j': Get(LittleEndian(4)); return;           // LONG_BINGET
      case 'c': {  // GLOBAL "module\nname\n"
        if (limits_.allowed_globals.empty())
          Fail("refused opcode GLOBAL: the pickle names a Python object (only plain data is accepted)");
        const std::string module(Line());
        PushGlobal(module, std::string(Line()));
        return;
      }
      case 0x93: {  // STACK_GLOBAL
        if (limits_.allowed_globals.empty())
          Fail("refused opcode STACK_GLOBAL: the pickle names a Python object (only plain data is accepted)");
        NodePtr name = Pop(), module = Pop();
        if (module->kind != K::kStr || name->kind != K::kStr) Fail("STACK_GLOBAL needs two strings");
        PushGlobal(module->s, name->s);
        return;
      }
      case 'R': Reduce(); return;
      case 'b': Build(); return;
      case 'Q': {  // BINPERSID
        if (!limits_.allow_persistent_ids) Fail("refused opcode BINPERSID (only plain data is accepted)");
        auto n = New(K::kPersistentId);
        n->items.push_back(Pop());
        Push(n);
        return;
      }
      case 'i': Fail("refused opcode INST (only plain data is accepted)");
      case 'o': Fail("refused opcode OBJ (only plain data is accepted)");
      case 0x81: Fail("refused opcode NEWOBJ (only plain data is accepted)");
      case 0x92: Fail("refused opcode NEWOBJ_EX (only plain data is accepted)");
      case 'P': Fail("refused opcode PERSID (only plain data is accepted)");
      case 0x82: case 0x83: case 0x84: Fail("refused opcode EXT (only plain data is accepted)");
      case 0x97: case 0x98: Fail("refused out-of-band buffer opcode");
      default: {
        char buf[8];
        std::snprintf(buf, sizeof buf, "0x%02x", op);
        Fail(std::string("unknown pickle opcode ") + buf);
      }
    }
  }

  void PushGlobal(const std::string& module, const std::string& name) {
    const std::string full = module + "." + name;
    bool allowed = false;
    for (const auto& g : limits_.allowed_globals) allowed = allowed || g == full;
    if (!allowed) Fail("refused global '" + full + "' (not among the objects this file may name)");
    PushStr(full, PyValue::Kind::kGlobal);
  }

  // REDUCE of an allowed global: recorded as data, never called.
  void Reduce() {
    using K = PyValue::Kind;
    if (limits_.allowed_globals.empty())
      Fail("refused opcode REDUCE: the pickle calls a Python object (only plain data is accepted)");
    NodePtr args = Pop();
    NodePtr callable = Pop();
    if (callable->kind != K::kGlobal) Fail("REDUCE of a " + std::string(KindName(callable->kind)) + ", not a global");
    if (args->kind != K::kTuple) Fail("REDUCE arguments are not a tuple");
    NodePtr n;
    if (callable->s == "collections.OrderedDict") {
      if (!args->items.empty()) Fail("OrderedDict() with arguments");
      n = New(K::kDict);
    } else {
      n = New(K::kObject);
      n->s = callable->s;
      n->items = args->items;
    }
    n->buildable = true;
    Push(n);
  }

  void Build() {
    if (limits_.allowed_globals.empty())
      Fail("refused opcode BUILD: the pickle builds a Python object (only plain data is accepted)");
    NodePtr state = Pop();
    NodePtr& target = Top();
    if (!target->buildable) Fail("BUILD on a value no allowed global made");
    if (target->kind == PyValue::Kind::kObject) target->state = state;
    graveyard_.push_back(std::move(state));  // a dict's attributes (_metadata) are dropped
  }

  static const char* KindName(PyValue::Kind k) {
    PyValue v;
    v.kind = k;
    return v.TypeName();
  }

  void SetItem(Node& d, const NodePtr& k, const NodePtr& v) {
    using K = PyValue::Kind;
    if (k->kind == K::kList || k->kind == K::kDict) Fail("unhashable dict key");
    // Python keeps the first position and the last value of a repeated key.
    for (auto& [ek, ev] : d.dict) {
      if (ek->kind == k->kind && ek->kind != K::kTuple && ek->s == k->s && ek->i == k->i && ek->b == k->b &&
          (ek->f == k->f)) {
        graveyard_.push_back(std::move(ev));
        ev = v;
        return;
      }
    }
    d.dict.emplace_back(k, v);
  }

  PyValue Convert(const Node& n, int depth, uint64_t* nodes) const {
    if (depth > limits_.max_depth)
      throw FormatError("nesting deeper than " + std::to_string(limits_.max_depth) + " (or a reference cycle)",
                        where_);
    if (++*nodes > limits_.max_nodes)
      throw FormatError("pickle expands to more than " + std::to_string(limits_.max_nodes) +
                            " values (shared references)", where_);
    PyValue v;
    v.kind = n.kind;
    v.b = n.b;
    v.i = n.i;
    v.f = n.f;
    v.s = n.s;
    if (n.state) v.state.push_back(Convert(*n.state, depth + 1, nodes));
    v.items.reserve(n.items.size());
    for (const auto& c : n.items) v.items.push_back(Convert(*c, depth + 1, nodes));
    v.keys.reserve(n.dict.size());
    v.values.reserve(n.dict.size());
    for (const auto& [k, c] : n.dict) {
      v.keys.push_back(Convert(*k, depth + 1, nodes));
      v.values.push_back(Convert(*c, depth + 1, nodes));
    }
    return v;
  }

  std::string_view data_;
  const std::string& where_;
  PickleLimits limits_;
  size_t pos_ = 0;
  size_t end_ = 0;  // just past STOP
  size_t op_pos_ = 0;
  std::vector<NodePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, NodePtr> memo_;
  std::vector<NodePtr> graveyard_;  // dropped nodes, torn down iteratively in ~Parser
  std::vector<NodePtr> all_;
};

}  // namespace

PyValue ParsePickle(std::string_view data, const std::string& where, const PickleLimits& limits) {
  Parser p(data, 0, where, limits);
  return p.Run();
}

PyValue ParsePickleAt(std::string_view data, size_t offset, const std::string& where,
                      const PickleLimits& limits, size_t* end) {
  if (offset > data.size()) throw FormatError("offset " + std::to_string(offset) + ": past the end of the data", where);
  Parser p(data, offset, where, limits);
  PyValue v = p.Run();
  *end = p.end();
  return v;
}

PyValue ReadPickleFile(const std::string& path, const PickleLimits& limits) {
  std::ifstream in(path, std::ios::binary);
  if (!in) ThrowErrno("cannot open pickle", path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string data = ss.str();
  return ParsePickle(data, path, limits);
}

}  // namespace uniter
