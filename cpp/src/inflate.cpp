// inflate.cpp - a compact DEFLATE decoder: a 64-bit bit buffer, canonical Huffman codes decoded with
// a 10-bit lookup table (longer codes fall back to the canonical bit-by-bit walk, as in zlib's puff).
#include "inflate.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace mlp {

// ---- CRC-32, slicing by 8 ---------------------------------------------------------------------
namespace {
struct CrcTables {
  uint32_t t[8][256];
  CrcTables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  }
};
const CrcTables& crc_tables() {
  static const CrcTables tables;
  return tables;
}
}  // namespace

uint32_t crc32(const void* data, std::size_t size, uint32_t crc) {
  const auto& t = crc_tables().t;
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  while (size >= 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);  // little-endian hosts only (x86, ARM)
    std::memcpy(&hi, p + 4, 4);
    lo ^= c;
    c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
        t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
    p += 8;
    size -= 8;
  }
  while (size--) c = t[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
  return ~c;
}

// ---- DEFLATE ----------------------------------------------------------------------------------
namespace {

[[noreturn]] void corrupt(const char* what) {
  throw std::runtime_error(std::string("corrupt deflate data: ") + what);
}

class BitReader {
 public:
  BitReader(const uint8_t* data, std::size_t size) : p_(data), begin_(data), end_(data + size) {}
  // Guarantees at least 57 bits in the buffer; past the end it feeds zeros and counts them.
  inline void refill() {
    while (count_ <= 56) {
      uint64_t byte = 0;
      if (p_ < end_) byte = *p_++;
      else ++phantom_;
      buf_ |= byte << count_;
      count_ += 8;
    }
  }
  inline uint32_t peek(int n) const { return static_cast<uint32_t>(buf_ & ((uint64_t(1) << n) - 1)); }
  inline void consume(int n) {
    buf_ >>= n;
    count_ -= n;
    if (static_cast<std::size_t>(count_) < 8 * phantom_) corrupt("unexpected end of input");
  }
  inline uint32_t bits(int n) {  // n <= 32
    if (count_ < n) refill();
    const uint32_t v = peek(n);
    consume(n);
    return v;
  }
  void align_to_byte() { consume(count_ % 8); }
  // Input bytes actually used so far (only meaningful when byte-aligned).
  std::size_t bytes_used() const {
    return static_cast<std::size_t>(p_ - begin_) + phantom_ - static_cast<std::size_t>(count_ / 8);
  }

 private:
  const uint8_t* p_;
  const uint8_t* begin_;
  const uint8_t* end_;
  uint64_t buf_ = 0;
  int count_ = 0;
  std::size_t phantom_ = 0;
};

constexpr int kMaxBits = 15;
constexpr int kFastBits = 10;

struct Huffman {
  uint16_t count[kMaxBits + 1];   // number of codes of each length
  uint16_t symbol[320];           // symbols ordered by code
  uint16_t fast[1 << kFastBits];  // (symbol << 4) | length, 0 when the code is longer than kFastBits

  // Builds from code lengths; an incomplete code is allowed (single distance codes are legal).
  void build(const uint8_t* lengths, int n) {
    std::memset(count, 0, sizeof(count));
    for (int s = 0; s < n; ++s) ++count[lengths[s]];
    count[0] = 0;
    int left = 1;
    for (int len = 1; len <= kMaxBits; ++len) {
      left <<= 1;
      left -= count[len];
      if (left < 0) corrupt("over-subscribed Huffman code");
    }
    uint16_t offs[kMaxBits + 2];
    offs[1] = 0;
    for (int len = 1; len <= kMaxBits; ++len) offs[len + 1] = offs[len] + count[len];
    for (int s = 0; s < n; ++s)
      if (lengths[s]) symbol[offs[lengths[s]]++] = static_cast<uint16_t>(s);
    // Fast table: canonical codes bit-reversed (DEFLATE sends Huffman codes MSB first).
    std::memset(fast, 0, sizeof(fast));
    int code = 0, index = 0;
    for (int len = 1; len <= kFastBits; ++len) {
      for (int i = 0; i < count[len]; ++i, ++code, ++index) {
        int rev = 0;
        for (int b = 0; b < len; ++b) rev |= ((code >> b) & 1) << (len - 1 - b);
        const uint16_t entry = static_cast<uint16_t>((symbol[index] << 4) | len);
        for (int k = rev; k < (1 << kFastBits); k += 1 << len) fast[k] = entry;
      }
      code <<= 1;
    }
  }

  int decode(BitReader& in) const {
    in.refill();
    const uint16_t e = fast[in.peek(kFastBits)];
    if (e) {
      in.consume(e & 15);
      return e >> 4;
    }
    // Slow path: canonical decoding one bit at a time.
    int code = 0, first = 0, index = 0;
    for (int len = 1; len <= kMaxBits; ++len) {
      code |= static_cast<int>(in.bits(1));
      const int c = count[len];
      if (code - c < first) return symbol[index + (code - first)];
      index += c;
      first += c;
      first <<= 1;
      code <<= 1;
    }
    corrupt("invalid Huffman code");
  }
};

const uint16_t kLengthBase[29] = {3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
                                  31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
const uint8_t kLengthExtra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                  2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
const uint16_t kDistBase[30] = {1,    2,    3,    4,    5,    7,     9,     13,    17,  25,
                                33,   49,   65,   97,   129,  193,   257,   385,   513, 769,
                                1025, 1537, 2049, 3073, 4097, 6145,  8193,  12289, 16385, 24577};
const uint8_t kDistExtra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

class Output {
 public:
  explicit Output(std::size_t hint) { buf_.resize(hint > 1024 ? hint : 1024); }
  inline void reserve_more(std::size_t n) {
    if (pos_ + n > buf_.size()) buf_.resize(std::max(buf_.size() * 2, pos_ + n));
  }
  inline void put(uint8_t b) { buf_[pos_++] = b; }
  inline void copy_match(std::size_t dist, std::size_t len) {
    if (dist > pos_) corrupt("distance too far back");
    uint8_t* d = buf_.data() + pos_;
    const uint8_t* s = d - dist;
    if (dist >= len) std::memcpy(d, s, len);
    else for (std::size_t i = 0; i < len; ++i) d[i] = s[i];
    pos_ += len;
  }
  std::vector<uint8_t> finish() {
    buf_.resize(pos_);
    return std::move(buf_);
  }

 private:
  std::vector<uint8_t> buf_;
  std::size_t pos_ = 0;
};

void inflate_codes(BitReader& in, Output& out, const Huffman& lit, const Huffman& dist) {
  for (;;) {
    const int sym = lit.decode(in);
    if (sym < 256) {
      out.reserve_more(1);
      out.put(static_cast<uint8_t>(sym));
    } else if (sym == 256) {
      return;
    } else {
      const int li = sym - 257;
      if (li >= 29) corrupt("invalid length symbol");
      const std::size_t len = kLengthBase[li] + in.bits(kLengthExtra[li]);
      const int di = dist.decode(in);
      if (di >= 30) corrupt("invalid distance symbol");
      const std::size_t d = kDistBase[di] + in.bits(kDistExtra[di]);
      out.reserve_more(len);
      out.copy_match(d, len);
    }
  }
}

void fixed_tables(Huffman& lit, Huffman& dist) {
  uint8_t lengths[288];
  int s = 0;
  for (; s < 144; ++s) lengths[s] = 8;
  for (; s < 256; ++s) lengths[s] = 9;
  for (; s < 280; ++s) lengths[s] = 7;
  for (; s < 288; ++s) lengths[s] = 8;
  lit.build(lengths, 288);
  for (s = 0; s < 30; ++s) lengths[s] = 5;
  dist.build(lengths, 30);
}

void dynamic_tables(BitReader& in, Huffman& lit, Huffman& dist) {
  static const uint8_t order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
  const int nlen = static_cast<int>(in.bits(5)) + 257;
  const int ndist = static_cast<int>(in.bits(5)) + 1;
  const int ncode = static_cast<int>(in.bits(4)) + 4;
  if (nlen > 286 || ndist > 30) corrupt("bad code counts");
  uint8_t lengths[320] = {0};
  for (int i = 0; i < ncode; ++i) lengths[order[i]] = static_cast<uint8_t>(in.bits(3));
  Huffman lencode;
  lencode.build(lengths, 19);
  int index = 0;
  while (index < nlen + ndist) {
    int sym = lencode.decode(in);
    if (sym < 16) {
      lengths[index++] = static_cast<uint8_t>(sym);
    } else {
      uint8_t len = 0;
      int repeat;
      if (sym == 16) {
        if (index == 0) corrupt("repeat with no first length");
        len = lengths[index - 1];
        repeat = 3 + static_cast<int>(in.bits(2));
      } else if (sym == 17) {
        repeat = 3 + static_cast<int>(in.bits(3));
      } else {
        repeat = 11 + static_cast<int>(in.bits(7));
      }
      if (index + repeat > nlen + ndist) corrupt("too many code lengths");
      while (repeat--) lengths[index++] = len;
    }
  }
  if (lengths[256] == 0) corrupt("no end-of-block code");
  lit.build(lengths, nlen);
  dist.build(lengths + nlen, ndist);
}

}  // namespace

std::vector<uint8_t> inflate(const uint8_t* data, std::size_t size, std::size_t size_hint,
                             std::size_t* consumed) {
  BitReader in(data, size);
  Output out(size_hint ? size_hint : size * 4);
  Huffman lit, dist;
  bool last = false;
  while (!last) {
    last = in.bits(1) != 0;
    const uint32_t type = in.bits(2);
    if (type == 0) {
      in.align_to_byte();
      const uint32_t len = in.bits(16);
      const uint32_t nlen = in.bits(16);
      if (len != (~nlen & 0xFFFF)) corrupt("stored block length check failed");
      out.reserve_more(len);
      for (uint32_t i = 0; i < len; ++i) out.put(static_cast<uint8_t>(in.bits(8)));
    } else if (type == 1) {
      fixed_tables(lit, dist);
      inflate_codes(in, out, lit, dist);
    } else if (type == 2) {
      dynamic_tables(in, lit, dist);
      inflate_codes(in, out, lit, dist);
    } else {
      corrupt("invalid block type");
    }
  }
  in.align_to_byte();
  if (consumed) *consumed = in.bytes_used();
  return out.finish();
}

bool is_gzip(const uint8_t* data, std::size_t size) {
  return size >= 2 && data[0] == 0x1F && data[1] == 0x8B;
}

std::vector<uint8_t> gunzip(const uint8_t* data, std::size_t size) {
  std::vector<uint8_t> result;
  std::size_t pos = 0;
  do {
    const uint8_t* p = data + pos;
    const std::size_t n = size - pos;
    if (n < 18 || !is_gzip(p, n)) throw std::runtime_error("not a gzip file (bad magic number)");
    if (p[2] != 8) throw std::runtime_error("gzip: unknown compression method");
    const uint8_t flags = p[3];
    std::size_t h = 10;
    auto need = [&](std::size_t k) {
      if (h + k > n) throw std::runtime_error("gzip: truncated header");
    };
    if (flags & 4) {  // FEXTRA
      need(2);
      h += 2 + (p[h] | (p[h + 1] << 8));
    }
    for (int field = 8; field <= 16; field <<= 1) {  // FNAME, FCOMMENT: zero-terminated
      if (flags & field) {
        while (true) {
          need(1);
          if (p[h++] == 0) break;
        }
      }
    }
    if (flags & 2) h += 2;  // FHCRC
    need(8);
    uint32_t isize;
    std::memcpy(&isize, data + size - 4, 4);  // a hint only: the last member's size mod 2^32
    std::size_t used = 0;
    // (capped by the largest possible DEFLATE ratio, so a corrupt length cannot allocate gigabytes)
    const std::size_t hint = pos == 0 ? std::min<std::size_t>(isize, (n - h) * 1032) : 0;
    std::vector<uint8_t> member = inflate(p + h, n - h, hint, &used);
    h += used;
    if (h + 8 > n) throw std::runtime_error("gzip: truncated (missing CRC and length)");
    uint32_t crc, len;
    std::memcpy(&crc, p + h, 4);
    std::memcpy(&len, p + h + 4, 4);
    if (crc != crc32(member.data(), member.size()))
      throw std::runtime_error("gzip: CRC-32 mismatch (corrupt file)");
    if (len != static_cast<uint32_t>(member.size()))
      throw std::runtime_error("gzip: length mismatch (corrupt file)");
    pos += h + 8;
    if (result.empty()) result = std::move(member);
    else result.insert(result.end(), member.begin(), member.end());
    // Trailing zero padding after the last member is tolerated, like gzip -d.
    while (pos < size && data[pos] == 0) ++pos;
  } while (pos < size);
  return result;
}

}  // namespace mlp
