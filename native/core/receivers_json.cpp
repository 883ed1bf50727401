#include "core/receivers_json.hpp"

#include <cctype>
#include <cstdint>

namespace liner {

namespace {

// A recursive-descent reader of just enough JSON: strings (with every escape, \u surrogate
// pairs included), and any other value skipped whole. Depth is bounded so that hostile input
// cannot exhaust the stack.
class JsonReader {
 public:
  explicit JsonReader(const std::string& text) : s_(text) {}

  Status fail(const char* expected) const {
    return Status(Err::invalid_arg, "receivers_json: expected " + std::string(expected) + " at offset " + std::to_string(i_));
  }
  void space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  bool eat(char c) {
    space();
    if (i_ < s_.size() && s_[i_] == c) return ++i_, true;
    return false;
  }
  bool at_end() {
    space();
    return i_ == s_.size();
  }

  Status string(std::string* out) {
    if (!eat('"')) return fail("a string");
    out->clear();
    while (i_ < s_.size()) {
      unsigned char c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return Status();
      if (c < 0x20) return fail("no control character in a string");
      if (c != '\\') {
        out->push_back(char(c));
        continue;
      }
      if (i_ == s_.size()) break;
      char e = s_[i_++];
      switch (e) {
        case '"': case '\\': case '/': out->push_back(e); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          if (!hex4(&cp)) return fail("four hex digits after \\u");
          if (cp >= 0xD800 && cp < 0xDC00) {  // a high surrogate: its low half must follow
            uint32_t lo = 0;
            if (!(eat_raw('\\') && eat_raw('u') && hex4(&lo) && lo >= 0xDC00 && lo < 0xE000))
              return fail("a low surrogate after a high one");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            return fail("no lone low surrogate");
          }
          utf8(cp, out);
          break;
        }
        default: return fail("a valid escape");
      }
    }
    return fail("the end of the string");
  }

  // Skips one value of any kind.
  Status skip(int depth = 0) {
    if (depth > 64) return fail("less nesting");
    space();
    if (i_ == s_.size()) return fail("a value");
    char c = s_[i_];
    if (c == '"') {
      std::string ignored;
      return string(&ignored);
    }
    if (c == '[' || c == '{') {
      char close = c == '[' ? ']' : '}';
      ++i_;
      if (eat(close)) return Status();
      do {
        if (c == '{') {
          std::string key;
          Status s = string(&key);
          if (!s) return s;
          if (!eat(':')) return fail("':'");
        }
        Status s = skip(depth + 1);
        if (!s) return s;
      } while (eat(','));
      return eat(close) ? Status() : fail(close == ']' ? "',' or ']'" : "',' or '}'");
    }
    size_t start = i_;  // a number or a literal: a run of the characters they are made of
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-' || s_[i_] == '+' || s_[i_] == '.')) ++i_;
    std::string word = s_.substr(start, i_ - start);
    if (word == "true" || word == "false" || word == "null") return Status();
    if (!word.empty() && (std::isdigit(static_cast<unsigned char>(word[0])) || word[0] == '-')) return Status();
    i_ = start;
    return fail("a value");
  }

 private:
  bool eat_raw(char c) { return i_ < s_.size() && s_[i_] == c ? (++i_, true) : false; }
  bool hex4(uint32_t* out) {
    if (s_.size() - i_ < 4) return false;
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      char h = s_[i_ + k];
      int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
      if (d < 0) return false;
      v = v * 16 + uint32_t(d);
    }
    i_ += 4;
    *out = v;
    return true;
  }
  static void utf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(char(cp));
    } else if (cp < 0x800) {
      out->push_back(char(0xC0 | (cp >> 6)));
      out->push_back(char(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(char(0xE0 | (cp >> 12)));
      out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(char(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(char(0xF0 | (cp >> 18)));
      out->push_back(char(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(char(0x80 | (cp & 0x3F)));
    }
  }

  const std::string& s_;
  size_t i_ = 0;
};

Status read_entry(JsonReader& r, SeedReceiver* e) {
  if (!r.eat('{')) return r.fail("an object {\"topic\", \"addr\", \"client_name\"}");
  bool has_topic = false, has_addr = false, has_name = false;
  if (!r.eat('}')) {
    do {
      std::string key;
      Status s = r.string(&key);
      if (!s) return s;
      if (!r.eat(':')) return r.fail("':'");
      std::string* field = key == "topic" ? (has_topic = true, &e->topic)
                           : key == "addr" ? (has_addr = true, &e->addr)
                           : key == "client_name" ? (has_name = true, &e->client_name)
                                                  : nullptr;
      s = field ? r.string(field) : r.skip();
      if (!s) return s;
    } while (r.eat(','));
    if (!r.eat('}')) return r.fail("',' or '}'");
  }
  if (!has_topic) return Status(Err::invalid_arg, "receivers_json: an entry has no \"topic\"");
  if (!has_addr) return Status(Err::invalid_arg, "receivers_json: an entry has no \"addr\"");
  if (!has_name) return Status(Err::invalid_arg, "receivers_json: an entry has no \"client_name\"");
  return Status();
}

}  // namespace

Status parse_receivers_json(const std::string& json, std::vector<SeedReceiver>* out) {
  out->clear();
  JsonReader r(json);
  if (r.at_end()) return Status();
  if (!r.eat('[')) return r.fail("a JSON array");
  if (!r.eat(']')) {
    do {
      SeedReceiver e;
      Status s = read_entry(r, &e);
      if (!s) return s;
      out->push_back(std::move(e));
    } while (r.eat(','));
    if (!r.eat(']')) return r.fail("',' or ']'");
  }
  return r.at_end() ? Status() : r.fail("nothing after the array");
}

Status seed_receivers(const std::string& store_url, const std::string& unique_name, const std::string& topic,
                      const std::string& localhost, const std::vector<SeedReceiver>& receivers) {
  std::unique_ptr<Store> store;
  Status s = open_store(store_url, &store);
  return s ? seed_sqlite_receivers(*store, unique_name, topic, localhost, receivers) : s;
}

}  // namespace liner
