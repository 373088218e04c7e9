// inflate.cpp - DEFLATE through zlib when the build has it (MLP_HAVE_ZLIB), else the own compact
// decoder: a 64-bit bit buffer, canonical Huffman codes decoded with a 10-bit lookup table (longer
// codes fall back to the canonical bit-by-bit walk, as in zlib's puff). The gzip framing and the
// output limits are the same code for both.
#include "inflate.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#ifdef MLP_HAVE_ZLIB
#include <zlib.h>
#endif

namespace mlp {

// ---- CRC-32, slicing by 8 ---------------------------------------------------------------------
#ifndef MLP_HAVE_ZLIB
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
#endif

uint32_t crc32(const void* data, std::size_t size, uint32_t crc) {
#ifdef MLP_HAVE_ZLIB
  const Bytef* p = static_cast<const Bytef*>(data);
  uLong c = crc;
  while (size > 0) {  // zlib takes an unsigned int length
    const uInt chunk = static_cast<uInt>(std::min<std::size_t>(size, UINT_MAX));
    c = ::crc32(c, p, chunk);
    p += chunk;
    size -= chunk;
  }
  return static_cast<uint32_t>(c);
#else
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
#endif
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

  // Builds from code lengths; returns the number of unused codes of the longest length (0: the code
  // is complete). Over-subscribed codes are an error; whether an incomplete one is depends on its
  // use (see allow_incomplete).
  int build(const uint8_t* lengths, int n) {
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
    return left;
  }

  // zlib's rule (inftrees.c), so that both decoders accept the same streams: a code with no symbols
  // is accepted (decoding it fails later, if it is used); an incomplete code-lengths code is an
  // error; an incomplete literal/length or distance code only when it is a single code of length 1.
  void check_complete(int left, bool code_lengths) const {
    int longest = 0;
    for (int len = kMaxBits; len >= 1 && !longest; --len)
      if (count[len]) longest = len;
    if (left > 0 && longest > 0 && (code_lengths || longest != 1)) corrupt("incomplete Huffman code");
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

struct LimitHit {};  // the output reached Output's limit; inflate() turns it into InflateLimitError

// The output buffer; never grows past `limit` bytes: what would go beyond is not written, LimitHit
// is thrown instead (so the first `limit` bytes are exact, which gunzip_head relies on).
class Output {
 public:
  Output(std::size_t hint, std::size_t limit) : limit_(limit) {
    buf_.resize(std::min(hint > 1024 ? hint : std::size_t(1024), limit_));
  }
  inline void reserve_more(std::size_t n) {
    if (n > buf_.size() - pos_) buf_.resize(std::min(std::max(buf_.size() * 2, pos_ + n), limit_));
  }
  inline void put(uint8_t b) {
    if (pos_ == limit_) throw LimitHit();
    buf_[pos_++] = b;
  }
  inline void copy_match(std::size_t dist, std::size_t len) {
    if (dist > pos_) corrupt("distance too far back");
    const std::size_t n = std::min(len, limit_ - pos_);
    uint8_t* d = buf_.data() + pos_;
    const uint8_t* s = d - dist;
    if (dist >= n) std::memcpy(d, s, n);
    else for (std::size_t i = 0; i < n; ++i) d[i] = s[i];
    pos_ += n;
    if (n < len) throw LimitHit();
  }
  std::vector<uint8_t> finish() {
    buf_.resize(pos_);
    return std::move(buf_);
  }

 private:
  std::vector<uint8_t> buf_;
  std::size_t pos_ = 0;
  std::size_t limit_;
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
  lencode.check_complete(lencode.build(lengths, 19), true);
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
  lit.check_complete(lit.build(lengths, nlen), false);
  dist.check_complete(dist.build(lengths + nlen, ndist), false);
}

}  // namespace

namespace {

// Decodes into out until the final block ends (or out's limit is hit: LimitHit).
void inflate_into(BitReader& in, Output& out) {
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
}

#ifdef MLP_HAVE_ZLIB
// zlib's raw inflate (window bits -15: no zlib or gzip wrapper) with the same contract as
// inflate_into: the output never passes `limit` (LimitHit instead, the first `limit` bytes exact).
// Returns the input bytes used.
std::size_t zlib_inflate_into(const uint8_t* data, std::size_t size, std::vector<uint8_t>& out, std::size_t hint,
                              std::size_t limit) {
  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  if (inflateInit2(&zs, -15) != Z_OK) throw std::bad_alloc();
  struct End {
    z_stream* z;
    ~End() { inflateEnd(z); }
  } end{&zs};
  out.resize(std::min(std::max<std::size_t>(hint, 1024), limit));
  std::size_t in_pos = 0, out_pos = 0;
  for (;;) {
    if (out_pos == out.size()) {
      if (out.size() < limit) {
        out.resize(std::min(limit, std::max<std::size_t>(1024, 2 * out.size())));
      } else {  // at the limit: the stream must end here, without one more byte
        uint8_t spare;
        zs.next_in = const_cast<Bytef*>(data + in_pos);
        zs.avail_in = static_cast<uInt>(std::min<std::size_t>(size - in_pos, UINT_MAX));
        zs.next_out = &spare;
        zs.avail_out = 1;
        const uInt before = zs.avail_in;
        const int ret = ::inflate(&zs, Z_NO_FLUSH);
        in_pos += before - zs.avail_in;
        if (zs.avail_out == 0) throw LimitHit();
        if (ret == Z_STREAM_END) return in_pos;
        if (ret == Z_DATA_ERROR || ret == Z_NEED_DICT) corrupt(zs.msg ? zs.msg : "invalid data");
        if (ret == Z_MEM_ERROR) throw std::bad_alloc();
        if (in_pos == size) corrupt("unexpected end of input");
        continue;
      }
    }
    zs.next_in = const_cast<Bytef*>(data + in_pos);
    zs.avail_in = static_cast<uInt>(std::min<std::size_t>(size - in_pos, UINT_MAX));
    zs.next_out = out.data() + out_pos;
    zs.avail_out = static_cast<uInt>(std::min<std::size_t>(out.size() - out_pos, UINT_MAX));
    const uInt in_before = zs.avail_in, out_before = zs.avail_out;
    const int ret = ::inflate(&zs, Z_NO_FLUSH);
    in_pos += in_before - zs.avail_in;
    out_pos += out_before - zs.avail_out;
    if (ret == Z_STREAM_END) {
      out.resize(out_pos);
      return in_pos;
    }
    if (ret == Z_DATA_ERROR || ret == Z_NEED_DICT) corrupt(zs.msg ? zs.msg : "invalid data");
    if (ret == Z_MEM_ERROR) throw std::bad_alloc();
    // Z_OK or Z_BUF_ERROR: go on while there is input left or the output filled up.
    if (in_pos == size && zs.avail_out > 0) corrupt("unexpected end of input");
  }
}
#endif

[[noreturn]] void limit_error(std::size_t max_output) {
  throw InflateLimitError("decompressed data exceed the expected " + std::to_string(max_output) + " bytes");
}

// A plausible hint (at most the largest DEFLATE ratio, 1032:1, times the input) pre-sizes the output.
std::size_t capped_hint(std::size_t hint, std::size_t size) {
  const std::size_t ratio_cap = size > (kNoLimit - 1032) / 1032 ? kNoLimit : size * 1032 + 1032;
  return std::min(hint ? hint : (size > kNoLimit / 4 ? kNoLimit : size * 4), ratio_cap);
}

}  // namespace

std::vector<uint8_t> inflate_builtin(const uint8_t* data, std::size_t size, std::size_t size_hint,
                                     std::size_t* consumed, std::size_t max_output) {
  BitReader in(data, size);
  Output out(capped_hint(size_hint, size), max_output);
  try {
    inflate_into(in, out);
  } catch (const LimitHit&) {
    limit_error(max_output);
  }
  in.align_to_byte();
  if (consumed) *consumed = in.bytes_used();
  return out.finish();
}

std::vector<uint8_t> inflate(const uint8_t* data, std::size_t size, std::size_t size_hint, std::size_t* consumed,
                             std::size_t max_output) {
#ifdef MLP_HAVE_ZLIB
  std::vector<uint8_t> out;
  try {
    const std::size_t used = zlib_inflate_into(data, size, out, capped_hint(size_hint, size), max_output);
    if (consumed) *consumed = used;
  } catch (const LimitHit&) {
    limit_error(max_output);
  }
  return out;
#else
  return inflate_builtin(data, size, size_hint, consumed, max_output);
#endif
}

const char* inflate_backend() {
#ifdef MLP_HAVE_ZLIB
  static const std::string name = std::string("zlib ") + zlibVersion();
  return name.c_str();
#else
  return "built-in";
#endif
}

bool is_gzip(const uint8_t* data, std::size_t size) {
  return size >= 2 && data[0] == 0x1F && data[1] == 0x8B;
}

namespace {

// Length of the gzip member header at p (n bytes available); throws when it is malformed.
std::size_t gzip_header_size(const uint8_t* p, std::size_t n) {
  if (n < 18 || !is_gzip(p, n)) throw std::runtime_error("not a gzip file (bad magic number)");
  if (p[2] != 8) throw std::runtime_error("gzip: unknown compression method");
  const uint8_t flags = p[3];
  std::size_t h = 10;
  auto need = [&](std::size_t k) {
    if (k > n || h > n - k) throw std::runtime_error("gzip: truncated header");
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
  return h;
}

}  // namespace

std::vector<uint8_t> gunzip_head(const uint8_t* data, std::size_t size, std::size_t n) {
  const std::size_t h = gzip_header_size(data, size);
#ifdef MLP_HAVE_ZLIB
  std::vector<uint8_t> out;
  try {
    zlib_inflate_into(data + h, size - h, out, n, n);
  } catch (const LimitHit&) {
  }
  return out;
#else
  BitReader in(data + h, size - h);
  Output out(n, n);
  try {
    inflate_into(in, out);
  } catch (const LimitHit&) {
  }
  return out.finish();
#endif
}

std::vector<uint8_t> gunzip(const uint8_t* data, std::size_t size, std::size_t max_output) {
  std::vector<uint8_t> result;
  std::size_t pos = 0;
  do {
    const uint8_t* p = data + pos;
    const std::size_t n = size - pos;
    std::size_t h = gzip_header_size(p, n);
    uint32_t isize;
    std::memcpy(&isize, data + size - 4, 4);  // a hint only: the last member's size mod 2^32
    std::size_t used = 0;
    const std::size_t hint = pos == 0 ? std::min<std::size_t>(isize, max_output) : 0;
    std::vector<uint8_t> member;
    try {
      member = inflate(p + h, n - h, hint, &used, max_output - result.size());
    } catch (const InflateLimitError&) {
      limit_error(max_output);  // the limit of the whole content, not of this member
    }
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
