// model_file.cpp - writing and reading model files, as mlp/model_file.py (format "mlp-model",
// version 3: strict JSON metadata, null where a value is missing, "batch_norm" and the arrays
// gamma<l>, beta<l>, mean<l>, var<l> of a batch-normalised model; versions 1 and 2 still load).
#include "model_file.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <unistd.h>

namespace mlp {

namespace {
[[noreturn]] void fail(const std::string& msg) { throw std::runtime_error(msg); }
constexpr int kFormatVersion = 3;  // mlp.model_file.FORMAT_VERSION; it reads 1 to 3
constexpr int kBatchNormVersion = 3;  // mlp.model_file.BATCH_NORM_VERSION: the first that may hold batch norm
}  // namespace

double pixel_divisor(const Json& metadata, const std::string& path) {
  const Json* pre = metadata.find("preprocessing");
  if (!pre || pre->type == Json::NUL) return 255.0;
  const Json* input = pre->find("input");
  if (!input) return 255.0;
  if (input->is_string() && input->string == "pixels / 255") return 255.0;
  if (input->is_string() && input->string == "pixels") return 1.0;
  fail(path + ": the model expects preprocessing " + input->dump() +
       ", which mlp-cpp does not implement (it knows \"pixels / 255\" and \"pixels\")");
}

// ---- model files ------------------------------------------------------------------------------

namespace {

// The metadata as JSON within `limit` bytes, as mlp.model_file.fit_metadata makes it: a long run's
// history (about 60 bytes an epoch) can outgrow what every reader accepts, and the model is worth
// more than its oldest epochs, so only the newest epochs that fit are kept (`dropped` says how many
// went). Sizes come from each entry's own length (arrays join items with ", "), so a long history
// costs two dumps, not a search over dumps. Throws when even an empty history does not fit.
std::string fit_metadata(Json meta, std::size_t limit, std::string& dropped) {
  std::string text = meta.dump();
  const Json* found = meta.find("history");
  if (text.size() <= limit || !found || found->type != Json::OBJECT) {
    if (text.size() > limit)
      fail("the model's metadata is " + with_commas(text.size()) + " bytes, over the " + with_commas(limit) +
           "-byte limit of the file format");
    return text;
  }
  const Json history = *found;
  std::size_t epochs = 0;
  for (const auto& kv : history.object)
    if (kv.second.type == Json::ARRAY) epochs = std::max(epochs, kv.second.array.size());
  auto keeping = [&](std::size_t n) {  // the last n entries of every list
    Json cut = history;
    for (auto& kv : cut.object)
      if (kv.second.type == Json::ARRAY) {
        auto& items = kv.second.array;
        items.erase(items.begin(), items.end() - static_cast<std::ptrdiff_t>(std::min(n, items.size())));
      }
    return cut;
  };
  meta.set("history", keeping(0));
  const std::size_t base = meta.dump().size();
  std::vector<std::vector<std::size_t>> tails;  // tails[k][n]: bytes of the last n items of list k
  for (const auto& kv : history.object) {
    if (kv.second.type != Json::ARRAY) continue;
    const auto& items = kv.second.array;
    std::vector<std::size_t> tail(1, 0);
    for (auto it = items.rbegin(); it != items.rend(); ++it) tail.push_back(tail.back() + it->dump().size());
    tails.push_back(std::move(tail));
  }
  auto size = [&](std::size_t n) {
    std::size_t total = base;
    for (const auto& tail : tails) {
      const std::size_t kept = std::min(n, tail.size() - 1);
      if (kept) total += tail[kept] + 2 * (kept - 1);
    }
    return total;
  };
  std::size_t low = 0, high = epochs + 1;  // size(low) fits (or low is 0), size(high) does not
  while (high - low > 1) {
    const std::size_t middle = (low + high) / 2;
    (size(middle) <= limit ? low : high) = middle;
  }
  meta.set("history", keeping(low));
  text = meta.dump();
  while (text.size() > limit && low > 0) {  // never expected (the sizes add up exactly): be safe
    low -= std::max<std::size_t>(1, low / 100);
    meta.set("history", keeping(low));
    text = meta.dump();
  }
  if (text.size() > limit)
    fail("the model's metadata is " + with_commas(text.size()) + " bytes even without its history, over the " +
         with_commas(limit) + "-byte limit of the file format");
  dropped = "the oldest " + with_commas(epochs - low) + " of " + with_commas(epochs) +
            " epochs of history (the last " + with_commas(low) + " kept)";
  return text;
}

}  // namespace

Writer model_writer(const std::string& what) {
  return Writer{what, [](const std::string& path) -> std::string {
    std::string found;
    if (starts_like_zip(path)) {
      try {
        const NpzArchive archive(path);
        const NpzEntry* entry = archive.find("metadata");
        if (entry && entry->name == "metadata.npy") {
          const NpyArray array = archive.read(*entry, defaults::kMaxMetadataBytes + 12 + kMaxNpyHeader);
          const Json meta = Json::parse(std::string(array.data.begin(), array.data.end()));
          const Json* format = meta.type == Json::OBJECT ? meta.find("format") : nullptr;
          if (format && format->is_string()) found = format->string;
        }
      } catch (const std::exception&) {
        found.clear();  // unreadable as a model file: something else
      }
    }
    if (found == "mlp-model") return "";
    return std::string("an mlp model file (it holds ") +
           (found == "mlp-checkpoint" ? "an mlp training checkpoint" : "something else") + ")";
  }};
}

namespace {

template <class T>
NpyArray float_array(const std::string& name, const std::vector<T>& values, const std::vector<std::size_t>& shape) {
  if (sizeof(T) == 4) return NpyArray::from_floats(name, reinterpret_cast<const float*>(values.data()), shape);
  return NpyArray::from_doubles(name, reinterpret_cast<const double*>(values.data()), shape);
}

// W0, b0, W1, b1, ..., then gamma0, beta0, mean0, var0, ... of a batch-normalised model.
template <class T>
std::vector<NpyArray> model_arrays(const Model<T>& m) {
  std::vector<NpyArray> arrays;
  for (int l = 0; l < m.layers(); ++l) {
    const std::size_t fan_in = static_cast<std::size_t>(m.sizes[l]), fan_out = static_cast<std::size_t>(m.sizes[l + 1]);
    arrays.push_back(float_array("W" + std::to_string(l), m.W[l], {fan_in, fan_out}));
    arrays.push_back(float_array("b" + std::to_string(l), m.b[l], {fan_out}));
  }
  for (std::size_t l = 0; l < m.norms.size(); ++l) {
    const Norm<T>& norm = m.norms[l];
    const std::vector<std::size_t> shape = {norm.gamma.size()};
    const std::string index = std::to_string(l);
    arrays.push_back(float_array("gamma" + index, norm.gamma, shape));
    arrays.push_back(float_array("beta" + index, norm.beta, shape));
    arrays.push_back(float_array("mean" + index, norm.mean, shape));
    arrays.push_back(float_array("var" + index, norm.var, shape));
  }
  return arrays;
}

}  // namespace

template <class T>
std::string save_model(const Model<T>& m, const std::string& path, const std::string& what) {
  Json meta = Json::make_object();
  meta.set("format", Json::of(std::string("mlp-model")));
  const bool by_class = takes_class_indices(m.loss);
  // Version 3, as mlp.model_file.FORMAT_VERSION: strict JSON (Json::dump writes null for NaN, as
  // for a missing val_loss), preprocessing null unless known, batch_norm null or its placement.
  meta.set("format_version", Json::of_int(kFormatVersion));
  meta.set("library_version", Json::of(std::string(defaults::kVersion)));
  Json hidden = Json::make_array();
  for (int l = 1; l + 1 < static_cast<int>(m.sizes.size()); ++l) hidden.array.push_back(Json::of(m.sizes[l]));
  meta.set("hidden_sizes", hidden);
  meta.set("activation", Json::of(std::string(activation_name(m.activation))));
  meta.set("loss", Json::of(std::string(loss_name(m.loss))));
  meta.set("n_features", Json::of(m.sizes[0]));
  Json classes = Json::make_array();
  for (int64_t v : m.classes) classes.array.push_back(Json::of_int(v));
  meta.set("classes", by_class ? classes : Json());  // null for a model trained on a target matrix
  meta.set("n_outputs", Json::of(m.sizes.back()));
  meta.set("dtype", Json::of(std::string(dtype_name<T>())));
  meta.set("batch_norm", m.batch_norm == BATCH_NORM_NONE ? Json() : Json::of(std::string(batch_norm_name(m.batch_norm))));
  meta.set("producer", Json::of(std::string("mlp-cpp ") + defaults::kVersion));
  Json pre = Json::make_object();  // as mlp.cli.MNIST_PREPROCESSING; null for data given as floats
  pre.set("input", Json::of(std::string("pixels / 255")));
  Json range = Json::make_array();
  range.array = {Json::of(0.0), Json::of(1.0)};
  pre.set("range", range);
  if (m.image_rows > 0) {
    Json shape = Json::make_array();
    shape.array = {Json::of(m.image_rows), Json::of(m.image_cols)};
    pre.set("image_shape", shape);
  }
  // A model that came from a file keeps its own preprocessing and any other fields.
  if (m.metadata.type == Json::OBJECT) {
    for (const auto& kv : m.metadata.object)
      if (!meta.find(kv.first) || kv.first == "preprocessing" || kv.first == "library_version")
        meta.set(kv.first, kv.second);
  }
  if (!meta.find("preprocessing")) meta.set("preprocessing", by_class ? pre : Json());

  std::vector<NpyArray> arrays = model_arrays(m);
  std::string note, text;
  try {
    text = fit_metadata(meta, defaults::kMaxMetadataBytes, note);
  } catch (const std::runtime_error& e) {
    fail("cannot write " + path + ": " + e.what());
  }
  if (!note.empty())
    note = "model file " + path + ": the metadata was over the " + with_commas(defaults::kMaxMetadataBytes) +
           "-byte limit of the file format; written without " + note;
  arrays.push_back(NpyArray::from_bytes("metadata", text));
  write_npz(path, arrays, model_writer(what));
  return note;
}

namespace {

// Limits checked before anything is allocated from a model file's sizes: the metadata's size, the
// widths and the number of hidden layers are mlp.options' MAX_* (train_defaults.hpp, generated), so
// both programs accept and refuse the same files, and mlp-cpp train refuses what it could not save.
constexpr std::uint64_t kMaxMetadataBytes = defaults::kMaxMetadataBytes;  // the JSON metadata entry
constexpr double kMaxLayerWidth = static_cast<double>(defaults::kMaxWidth);  // n_features, hidden sizes, outputs
constexpr std::size_t kMaxHiddenLayers = defaults::kMaxHiddenLayers;
constexpr std::uint64_t kMaxParameters = std::uint64_t(1) << 31;  // 8 GiB of float32 weights (this port's own)

std::string shape_text(const std::vector<std::size_t>& s) {
  std::string t = "(";
  for (std::size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + (s.size() == 1 ? ",)" : ")");
}

// An integral number in [lo, hi] ("784" or "784.0", not true or 784.5), as mlp.model_file reads it.
bool integral(const Json& j, double lo, double hi) {
  return j.is_number() && std::isfinite(j.number) && j.number == std::floor(j.number) && j.number >= lo && j.number <= hi;
}

int json_int(const Json* j, const std::string& path, const std::string& key, int lo) {
  if (!j || !integral(*j, lo, kMaxLayerWidth))
    fail(path + ": metadata field '" + key + "' is missing or not an integer from " + std::to_string(lo) + " to " +
         std::to_string(static_cast<long long>(kMaxLayerWidth)));
  return static_cast<int>(j->number);
}

bool is_null_or_object(const Json* j) { return !j || j->type == Json::NUL || j->type == Json::OBJECT; }
bool is_number_or_null(const Json& j) { return j.type == Json::NUMBER || j.type == Json::NUL; }

// The optional fields: l2 (a number >= 0), config and preprocessing (objects or null), config's
// optimizer and preprocessing (objects or null), library_version (a string), history (an object of
// lists of numbers or nulls; per-layer keys may hold a list per epoch).
void check_optional_fields(const Json& meta, const std::string& path) {
  if (const Json* l2 = meta.find("l2"))
    if (!l2->is_number() || !std::isfinite(l2->number) || l2->number < 0)
      fail(path + ": metadata field 'l2' must be a number >= 0, got " + l2->dump().substr(0, 40));
  for (const char* key : {"config", "preprocessing"})
    if (!is_null_or_object(meta.find(key)))
      fail(path + ": metadata field '" + key + "' must be an object or null");
  if (const Json* config = meta.find("config"))
    for (const char* key : {"optimizer", "preprocessing"})
      if (!is_null_or_object(config->find(key)))
        fail(path + ": config['" + key + "'] must be an object or null");
  if (const Json* version = meta.find("library_version"))
    if (!version->is_string()) fail(path + ": metadata field 'library_version' must be a string");
  const Json* history = meta.find("history");
  if (!history || history->type == Json::NUL) return;
  if (history->type != Json::OBJECT) fail(path + ": metadata field 'history' must be an object of lists");
  static const char* const scalar_keys[] = {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"};
  for (const auto& kv : history->object) {
    if (kv.second.type != Json::ARRAY) fail(path + ": history[" + Json::of(kv.first).dump() + "] must be a list");
    const bool scalar = std::find(std::begin(scalar_keys), std::end(scalar_keys), kv.first) != std::end(scalar_keys);
    for (const Json& item : kv.second.array) {
      bool ok = is_number_or_null(item);
      if (!ok && !scalar && item.type == Json::ARRAY)
        ok = std::all_of(item.array.begin(), item.array.end(), is_number_or_null);
      if (!ok) fail(path + ": history[" + Json::of(kv.first).dump() + "] holds " + item.dump().substr(0, 40) + ", not a number");
    }
  }
}

std::string json_str(const Json* j, const std::string& path, const std::string& key) {
  if (!j || !j->is_string()) fail(path + ": metadata field '" + key + "' is missing or not a string");
  return j->string;
}

// A model's description, as read_description finds it in the metadata.
struct Description {
  Json meta;
  std::vector<int> sizes;
  std::vector<int64_t> classes;
  int activation = RELU, loss = CROSS_ENTROPY, batch_norm = BATCH_NORM_NONE;
  std::string dtype;
  std::size_t hidden_layers() const { return sizes.size() - 2; }
  std::size_t norms() const { return batch_norm == BATCH_NORM_NONE ? 0 : hidden_layers(); }
};

// "batch_norm": absent or null (no normalisation), "before" or "after", the latter two from format
// version 3 on (as mlp.model_file's _batch_norm_field).
int read_batch_norm(const Json& meta, const std::string& path) {
  const Json* field = meta.find("batch_norm");
  if (!field || field->type == Json::NUL) return BATCH_NORM_NONE;
  const bool named = field->is_string() && (field->string == "before" || field->string == "after");
  if (!named)
    fail(path + ": metadata field 'batch_norm' must be null, 'before' or 'after', got " + field->dump().substr(0, 40));
  const double version = meta.find("format_version")->number;  // checked by read_metadata
  if (version < kBatchNormVersion)
    fail(path + ": batch_norm '" + field->string + "' needs format version " + std::to_string(kBatchNormVersion) +
         ", but the file says " + std::to_string(static_cast<int>(version)));
  return batch_norm_from_name(field->string);
}

// The metadata entry as a JSON object of a known format and version (mlp.model_file's
// Archive.read_metadata, decode_metadata and the first checks of check_model_metadata).
Json read_metadata(const NpzArchive& archive, const std::string& path) {
  const NpzEntry* entry = archive.find("metadata");
  if (!entry) fail(path + ": no 'metadata' entry (not an mlp model file)");
  if (entry->name != "metadata.npy") fail(path + ": the entry '" + entry->name + "' is not a .npy array");
  // The limit is on the JSON, as in mlp.model_file (the entry also holds the .npy header).
  const NpyArray array = archive.read(*entry, kMaxMetadataBytes + 12 + kMaxNpyHeader);
  if (array.descr != "|u1" || array.shape.size() != 1)
    fail(path + ": the metadata entry is not a 1-D uint8 array of JSON text");
  if (array.shape[0] > kMaxMetadataBytes)
    fail(path + ": the metadata is " + with_commas(array.shape[0]) + " bytes, over the " +
         with_commas(kMaxMetadataBytes) + "-byte limit");
  const std::string text(array.data.begin(), array.data.end());
  if (!valid_utf8(text)) fail(path + ": metadata is not valid UTF-8 text");
  Json meta;
  std::string nonfinite;  // the first NaN / Infinity token, refused in version 2 below
  try {
    meta = Json::parse(text, &nonfinite);
  } catch (const std::exception& ex) {
    fail(path + ": metadata: " + ex.what());
  }
  if (meta.type != Json::OBJECT) fail(path + ": metadata is not a JSON object");
  const Json* format = meta.find("format");
  if (!format || !format->is_string() || format->string != "mlp-model")
    fail(path + ": metadata format is not 'mlp-model' (not an mlp model file)");
  const Json* version = meta.find("format_version");
  if (!version || !integral(*version, 1, 1e18)) fail(path + ": metadata field 'format_version' must be a positive integer");
  if (version->number < 1 || version->number > kFormatVersion)
    fail(path + ": model format_version " + version->dump() + " is not supported (this program reads versions 1 to " +
         std::to_string(kFormatVersion) + ")");
  if (version->number >= 2 && !nonfinite.empty())  // (as mlp.model_file.decode_metadata)
    fail(path + ": its metadata holds the token " + nonfinite + ", which format version " + version->dump() +
         " (strict JSON) does not allow; null stands for a missing value");
  return meta;
}

// The output width from classes or n_outputs, appended to d.sizes: a classifier lists distinct
// int64 classes (n_outputs, when present, their count); a value loss has none and n_outputs outputs.
void read_outputs(Description& d, const std::string& path) {
  const Json& meta = d.meta;
  const Json* classes = meta.find("classes");
  const Json* n_outputs = meta.find("n_outputs");
  if (!takes_class_indices(d.loss)) {  // regression or multilabel: classes null, n_outputs outputs
    if (classes && classes->type != Json::NUL)
      fail(path + ": a model with loss '" + loss_name(d.loss) + "' has no classes, but metadata field 'classes' is " +
           classes->dump().substr(0, 40));
    d.sizes.push_back(json_int(n_outputs, path, "n_outputs", 1));
  } else {
    if (!classes || classes->type != Json::ARRAY || classes->array.empty())
      fail(path + ": metadata field 'classes' is missing or empty");
    if (classes->array.size() > kMaxLayerWidth) fail(path + ": metadata lists too many classes");
    for (const Json& cl : classes->array) {
      // int64, exactly as Python reads them: an integer literal keeps every digit (2^53 + 1 stays
      // itself); an integral float literal (3.0) counts, as in mlp.model_file.integer_field.
      if (cl.exact) {
        d.classes.push_back(cl.int64);
        continue;
      }
      if (cl.integer || !integral(cl, -9223372036854775808.0, 9223372036854774784.0))  // [-2^63, 2^63)
        fail(path + ": metadata 'classes' must hold integers from -2^63 to 2^63 - 1 (string labels are not "
             "supported by the C++ port)");
      d.classes.push_back(static_cast<int64_t>(cl.number));
    }
    std::vector<int64_t> sorted = d.classes;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
      fail(path + ": metadata field 'classes' lists a class twice");
    // n_outputs, when present, must equal the number of classes (as Python's ==: 10.0 and, for one
    // class, true count; null does not).
    const double count = static_cast<double>(d.classes.size());
    if (n_outputs && !((n_outputs->is_number() && n_outputs->number == count) ||
                       (n_outputs->type == Json::BOOL && n_outputs->boolean && count == 1)))
      fail(path + ": metadata field 'n_outputs' is " + n_outputs->dump().substr(0, 40) + " but the model lists " +
           std::to_string(d.classes.size()) + " classes");
    d.sizes.push_back(static_cast<int>(d.classes.size()));
  }
}

// Refuses a model whose weights this program would not load or this machine could not hold.
void check_parameter_memory(const Description& d, const std::string& path) {
  std::uint64_t parameters = 0;  // each term <= 1e16: no overflow
  for (std::size_t l = 0; l + 1 < d.sizes.size(); ++l)
    parameters += static_cast<std::uint64_t>(d.sizes[l]) * static_cast<std::uint64_t>(d.sizes[l + 1]) + d.sizes[l + 1];
  for (std::size_t l = 0; l < d.norms(); ++l) parameters += 4 * static_cast<std::uint64_t>(d.sizes[l + 1]);
  if (parameters > kMaxParameters)
    fail(path + ": the metadata describes " + std::to_string(parameters) + " parameters, more than the " +
         std::to_string(kMaxParameters) + " this program loads");
  const double bytes = static_cast<double>(parameters) * (d.dtype == "float32" ? 4 : 8);
  const double physical = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
  if (physical > 0 && bytes > 0.5 * physical) {
    char msg[160];
    std::snprintf(msg, sizeof msg, ": the model's weights need %.1f GB but the machine has %.1f GB", bytes / 1e9, physical / 1e9);
    fail(path + msg);
  }
}

// The model's description from its metadata entry: checked field by field, nothing allocated yet.
Description read_description(const NpzArchive& archive, const std::string& path) {
  Description d;
  d.meta = read_metadata(archive, path);
  const Json& meta = d.meta;
  d.sizes.push_back(json_int(meta.find("n_features"), path, "n_features", 1));
  const Json* hidden = meta.find("hidden_sizes");
  if (!hidden || hidden->type != Json::ARRAY) fail(path + ": metadata field 'hidden_sizes' is missing or not a list");
  if (hidden->array.size() > kMaxHiddenLayers)
    fail(path + ": metadata lists " + std::to_string(hidden->array.size()) + " hidden layers (at most " +
         std::to_string(kMaxHiddenLayers) + ")");
  for (const Json& h : hidden->array) d.sizes.push_back(json_int(&h, path, "hidden_sizes", 1));
  // The loss first: it says whether the model has classes (as mlp.model_file.check_model_metadata).
  const std::string activation = json_str(meta.find("activation"), path, "activation");
  d.activation = activation == "linear" ? -1 : activation_from_name(activation);  // (a C++-only alias)
  if (d.activation < 0)
    fail(path + ": unknown activation " + Json::of(activation).dump().substr(0, 60) +
         "; known: " + activation_names());
  d.loss = loss_from_name(json_str(meta.find("loss"), path, "loss"));
  if (d.loss < 0)
    fail(path + ": unknown loss " + meta.find("loss")->dump().substr(0, 60) +
         "; known: " + loss_names());
  read_outputs(d, path);
  d.dtype = json_str(meta.find("dtype"), path, "dtype");
  if (d.dtype != "float32" && d.dtype != "float64")
    fail(path + ": metadata field 'dtype' must be 'float32' or 'float64', got " + Json::of(d.dtype).dump().substr(0, 40));
  d.batch_norm = read_batch_norm(meta, path);
  check_optional_fields(meta, path);
  check_parameter_memory(d, path);
  return d;
}

using Entries = std::vector<std::pair<const NpzEntry*, std::vector<std::size_t>>>;

// The entry `name`, checked to exist and to declare about the size its shape needs (in float32 or
// float64, so that a wrong dtype gets its own message later) before anything is allocated or
// decompressed.
const NpzEntry* checked_entry(const NpzArchive& archive, const std::string& name, const std::vector<std::size_t>& shape,
                              const std::string& path) {
  const NpzEntry* e = archive.find(name);
  if (!e) fail(path + ": array " + name + " is missing");
  if (e->name != name + ".npy") fail(path + ": the entry '" + e->name + "' is not a .npy array");
  std::uint64_t count = 1;
  for (std::size_t d : shape) count *= d;
  const std::uint64_t most = 8 * count + 12 + kMaxNpyHeader;
  const std::uint64_t least = 4 * count + 10;  // float32 data after the shortest .npy preamble
  if (e->usize > most || e->usize < least)
    fail(path + ": " + name + " is stored with " + std::to_string(e->usize) + " bytes, but its shape " +
         shape_text(shape) + " from the metadata needs " + std::to_string(least) + " to " + std::to_string(most) +
         " (the file does not match its metadata)");
  if (!e->size_plausible())
    fail(path + ": " + name + " declares " + std::to_string(e->usize) + " bytes in " + std::to_string(e->csize) +
         " stored bytes, which cannot be (a truncated, corrupt or crafted file)");
  return e;
}

// The entries W<l>, b<l> for the sizes, then gamma<l>, beta<l>, mean<l>, var<l> of each hidden layer
// of a batch-normalised model, each checked before anything is allocated or decompressed.
Entries parameter_entries(const NpzArchive& archive, const Description& d, const std::string& path) {
  Entries out;
  for (std::size_t l = 0; l + 1 < d.sizes.size(); ++l) {
    const std::size_t fan_in = static_cast<std::size_t>(d.sizes[l]), fan_out = static_cast<std::size_t>(d.sizes[l + 1]);
    out.emplace_back(checked_entry(archive, "W" + std::to_string(l), {fan_in, fan_out}, path),
                     std::vector<std::size_t>{fan_in, fan_out});
    out.emplace_back(checked_entry(archive, "b" + std::to_string(l), {fan_out}, path), std::vector<std::size_t>{fan_out});
  }
  for (std::size_t l = 0; l < d.norms(); ++l)
    for (const char* prefix : {"gamma", "beta", "mean", "var"}) {
      const std::vector<std::size_t> shape = {static_cast<std::size_t>(d.sizes[l + 1])};
      out.emplace_back(checked_entry(archive, prefix + std::to_string(l), shape, path), shape);
    }
  return out;  // other entries are ignored, never inflated (as mlp.model_file does)
}

// The k-th array of parameter_entries' order in the model.
template <class T>
std::vector<T>& model_array(Model<T>& m, std::size_t k) {
  const std::size_t dense = 2 * m.W.size();
  if (k < dense) return k % 2 == 0 ? m.W[k / 2] : m.b[k / 2];
  Norm<T>& norm = m.norms[(k - dense) / 4];
  switch ((k - dense) % 4) {
    case 0: return norm.gamma;
    case 1: return norm.beta;
    case 2: return norm.mean;
    default: return norm.var;
  }
}

template <class T>
void fill_model(Model<T>& m, const NpzArchive& archive, const Entries& entries, const std::string& path) {
  const std::string want = sizeof(T) == 4 ? "<f4" : "<f8";
  for (std::size_t k = 0; k < entries.size(); ++k) {
    const NpzEntry& e = *entries[k].first;
    const std::vector<std::size_t>& shape = entries[k].second;
    const NpyArray a = archive.read(e, e.usize);  // its size was bounded by parameter_entries
    if (a.descr != want) fail(path + ": " + a.name + " has dtype " + a.descr + " but the metadata says " + dtype_name<T>());
    if (a.shape != shape)
      fail(path + ": " + a.name + " has shape " + shape_text(a.shape) + ", expected " + shape_text(shape) +
           " from the metadata");
    std::vector<T>& dst = model_array(m, k);
    std::memcpy(dst.data(), a.data.data(), dst.size() * sizeof(T));
    for (T v : dst)
      if (!std::isfinite(v)) fail(path + ": " + a.name + " holds NaN or infinite values");
    const bool running_var = k >= 2 * m.W.size() && (k - 2 * m.W.size()) % 4 == 3;
    if (running_var)
      for (T v : dst)
        if (v < T(0)) fail(path + ": " + a.name + " holds a negative variance");
  }
}

}  // namespace

AnyModel load_model(const std::string& path) { return load_model(NpzArchive(path)); }

AnyModel load_model(const NpzArchive& archive) {
  const std::string& path = archive.path();
  Description d = read_description(archive, path);
  const Entries entries = parameter_entries(archive, d, path);
  AnyModel any;
  any.dtype = d.dtype;
  auto setup = [&](auto& m) {
    m.sizes = d.sizes;
    m.activation = d.activation;
    m.loss = d.loss;
    m.batch_norm = d.batch_norm;
    m.classes = d.classes;
    m.metadata = d.meta;
    m.allocate();
    fill_model(m, archive, entries, path);
  };
  if (d.dtype == "float32") setup(any.f32);
  else setup(any.f64);
  return any;
}

template std::string save_model<float>(const Model<float>&, const std::string&, const std::string&);
template std::string save_model<double>(const Model<double>&, const std::string&, const std::string&);

}  // namespace mlp
