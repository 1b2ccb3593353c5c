#include "tokenizer/models/wordpiece.h"

#include <algorithm>
#include <deque>

#include "common/error.h"

namespace uniter::tokenizer {

namespace {

// The pointer trie the double array is built from.
struct Node {
  std::vector<std::pair<uint8_t, int32_t>> kids;  // sorted by byte once built
  int32_t token = -1;
};

// REQUIRES: kids sorted.
int32_t Child(const std::vector<Node>& t, int32_t u, uint8_t c) {
  const auto& kids = t[static_cast<size_t>(u)].kids;
  auto it = std::lower_bound(kids.begin(), kids.end(), std::make_pair(c, int32_t{-1}));
  return (it != kids.end() && it->first == c) ? it->second : -1;
}

void Insert(std::vector<Node>* t, int32_t root, std::string_view s, int32_t id) {
  int32_t u = root;
  for (unsigned char c : s) {
    auto& kids = (*t)[static_cast<size_t>(u)].kids;
    auto it = std::lower_bound(kids.begin(), kids.end(), std::make_pair(static_cast<uint8_t>(c), int32_t{-1}));
    int32_t v;
    if (it != kids.end() && it->first == c) {
      v = it->second;
    } else {
      v = static_cast<int32_t>(t->size());
      kids.insert(it, {static_cast<uint8_t>(c), v});
      t->emplace_back();
    }
    u = v;
  }
  (*t)[static_cast<size_t>(u)].token = id;
}

}  // namespace

WordPiece::WordPiece(const Vocab& vocab, const WordPieceConfig& config)
    : max_chars_(config.max_input_chars_per_word) {
  unk_id_ = vocab.TokenToId(config.unk_token);
  if (unk_id_ < 0) throw FormatError("unknown token '" + config.unk_token + "' is not in the vocabulary");
  const std::string& prefix = config.continuing_subword_prefix;

  // 1. Pointer trie. Node 0 = word-initial root, node 1 = continuation root.
  // A prefixed token is also inserted literally under the first root, since
  // greedy matching at a word start looks the bare string up as well.
  std::vector<Node> t(2);
  for (const auto& [token, id] : vocab.ids()) {
    if (token.empty()) continue;
    Insert(&t, 0, token, id);
    if (!prefix.empty() && token.size() > prefix.size() && token.compare(0, prefix.size(), prefix) == 0)
      Insert(&t, 1, std::string_view(token).substr(prefix.size()), id);
  }

  // 2. Failure links and pops, breadth first from both roots (the paper's
  // Algorithm 2): a token node fails to the continuation root popping itself;
  // any other node inherits its parent's pops and walks its parent's failure
  // chain until the same byte can be taken.
  const size_t n = t.size();
  std::vector<int32_t> fail(n, -1);
  std::vector<std::vector<int32_t>> pops(n);
  std::deque<int32_t> queue = {0, 1};
  while (!queue.empty()) {
    const int32_t u = queue.front();
    queue.pop_front();
    for (const auto& [c, v] : t[static_cast<size_t>(u)].kids) {
      queue.push_back(v);
      const size_t vi = static_cast<size_t>(v);
      if (t[vi].token >= 0) {
        fail[vi] = 1;
        pops[vi] = {t[vi].token};
        continue;
      }
      int32_t z = fail[static_cast<size_t>(u)];
      std::vector<int32_t> p = pops[static_cast<size_t>(u)];
      while (z >= 0 && Child(t, z, c) < 0) {
        const auto& pz = pops[static_cast<size_t>(z)];
        p.insert(p.end(), pz.begin(), pz.end());
        z = fail[static_cast<size_t>(z)];
      }
      if (z >= 0) {
        fail[vi] = Child(t, z, c);
        pops[vi] = std::move(p);
      }
    }
  }

  // 3. Double array, first fit, nodes placed breadth first. next_free (with
  // path halving) jumps over occupied slots, so placing stays near linear.
  std::vector<int32_t> slot(n, -1);
  slot[0] = 0;
  slot[1] = 1;
  std::vector<int32_t> base(n, 0);
  std::vector<char> used = {1, 1};
  std::vector<int32_t> next_free = {1, 2};  // next_free[i]: a candidate free slot >= i
  auto grow = [&](size_t size) {
    while (used.size() < size) {
      used.push_back(0);
      next_free.push_back(static_cast<int32_t>(next_free.size()));
    }
  };
  auto find_free = [&](size_t i) {
    grow(i + 1);
    while (used[i]) {
      grow(static_cast<size_t>(next_free[i]) + 1);
      const size_t nx = static_cast<size_t>(next_free[i]);
      next_free[i] = next_free[nx];
      i = nx;
    }
    return i;
  };
  queue = {0, 1};
  while (!queue.empty()) {
    const int32_t u = queue.front();
    queue.pop_front();
    const auto& kids = t[static_cast<size_t>(u)].kids;
    if (kids.empty()) continue;
    const int32_t c0 = kids.front().first;
    size_t pos = find_free(static_cast<size_t>(c0) + 1);
    int32_t b;
    for (;; pos = find_free(pos + 1)) {
      b = static_cast<int32_t>(pos) - c0;
      bool ok = true;
      for (const auto& [c, v] : kids) {
        const size_t s = static_cast<size_t>(b + c);
        grow(s + 1);
        if (used[s]) {
          ok = false;
          break;
        }
      }
      if (ok) break;
    }
    base[static_cast<size_t>(u)] = b;
    for (const auto& [c, v] : kids) {
      const size_t s = static_cast<size_t>(b + c);
      used[s] = 1;
      next_free[s] = static_cast<int32_t>(s + 1);
      slot[static_cast<size_t>(v)] = static_cast<int32_t>(s);
      queue.push_back(v);
    }
  }
  const size_t slots = used.size() + 256;  // any base + byte stays in range
  base_.assign(slots, 0);
  check_.assign(slots, -2);
  fail_.assign(slots, -1);
  pop_off_.assign(slots, 0);
  pop_len_.assign(slots, 0);
  for (size_t u = 0; u < n; ++u) {
    const size_t s = static_cast<size_t>(slot[u]);
    base_[s] = base[u];
    fail_[s] = fail[u] >= 0 ? slot[static_cast<size_t>(fail[u])] : -1;
    pop_off_[s] = static_cast<uint32_t>(pops_.size());
    pop_len_[s] = static_cast<uint32_t>(pops[u].size());
    pops_.insert(pops_.end(), pops[u].begin(), pops[u].end());
    for (const auto& [c, v] : t[u].kids) check_[static_cast<size_t>(slot[static_cast<size_t>(v)])] = static_cast<int32_t>(s);
  }
}

void WordPiece::End(State* st, std::vector<int32_t>* ids) const {
  if (!st->failed && st->chars <= max_chars_) {
    int32_t u = st->node;
    while (u != kRoot && u != kSuffixRoot) {
      const int32_t f = fail_[static_cast<size_t>(u)];
      if (f < 0) break;
      AppendPops(u, ids);
      u = f;
    }
    if (u == kRoot || u == kSuffixRoot) return;
  }
  ids->resize(st->mark);
  ids->push_back(unk_id_);
}

void WordPiece::Tokenize(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  State st;
  Begin(&st, *ids);
  for (unsigned char c : word) {
    if ((c & 0xC0) != 0x80) ++st.chars;
    Feed(&st, c, ids);
  }
  End(&st, ids);
}

}  // namespace uniter::tokenizer
