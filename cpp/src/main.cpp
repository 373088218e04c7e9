// main.cpp - the mlp-cpp command line: train on MNIST, evaluate a model file, convert data.
//
//   mlp-cpp train --data DIR [--hidden 128,64] [--epochs N] [--batch-size N|full] ... [--out model.npz]
//   mlp-cpp train --data FILE.npz [--loss squared_error|binary_cross_entropy|poisson] ...   (real-valued targets)
//   mlp-cpp evaluate MODEL.npz --data DIR|FILE.npz [--predictions OUT.npz]
//   mlp-cpp convert --data DIR --out DIR2     (IDX[.gz] -> train.mlpd / test.mlpd)
//
// Every error is one line on stderr ("mlp-cpp: error: ...") and a non-zero exit status:
// 2 for a bad command line, 1 for anything else (unreadable data, malformed files, divergence).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "data.hpp"
#include "files.hpp"
#include "gemm.hpp"
#include "inflate.hpp"
#include "model.hpp"
#include "model_file.hpp"
#include "network.hpp"
#include "training.hpp"
#include "npz.hpp"

namespace {

using namespace mlp;

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "256,128" from an int array; "none" when empty.
template <std::size_t N>
std::string join_sizes(const int (&sizes)[N]) {
  std::string s;
  for (std::size_t i = 0; i < N; ++i) s += (i ? "," : "") + std::to_string(sizes[i]);
  return s.empty() ? "none" : s;
}

// "a, b, c" -> "a|b|c"
std::string names_with_bars(std::string names) {
  for (std::size_t at; (at = names.find(", ")) != std::string::npos;) names.replace(at, 2, "|");
  return names;
}

std::string format_g(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// The train help; every default in brackets comes from train_defaults.hpp (generated from the one
// table of options in mlp/options.py), so the help cannot drift from the Python package.
std::string train_help() {
  namespace d = defaults;
  auto row = [](const char* flag, const std::string& text, const std::string& def) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "  %-24s %-50s [%s]\n", flag, text.c_str(), def.c_str());
    return std::string(buf);
  };
  auto off_or = [](double v) { return v > 0 ? format_g(v) : std::string("off"); };
  std::string h =
      "usage: mlp-cpp train --data DIR [options]\n"
      "\n"
      "Train a multilayer perceptron on MNIST (DIR holds train.mlpd/test.mlpd or the four IDX files,\n"
      "gzip-compressed or not), print per-epoch loss, train accuracy and seconds, then test accuracy.\n"
      "With --data FILE.npz (arrays X_train, y_train and optionally X_test, y_test; y real values, one\n"
      "column or several) it trains on real-valued targets instead: regression with --loss squared_error\n"
      "(the default for such a file; identity outputs), multilabel with --loss binary_cross_entropy\n"
      "(0/1 targets, sigmoid outputs), counts with --loss poisson (targets >= 0, exp outputs), and\n"
      "reports the test mean squared error and R^2.\n"
      "Defaults (in brackets) are mlp.fit's, from the one table of options in mlp/options.py.\n"
      "\n";
  h += row("--hidden 128,64", "hidden layer widths ('' or none: no hidden layer)", join_sizes(d::kHiddenSizes));
  h += row("--epochs N", "passes over the training set", std::to_string(d::kEpochs));
  h += row("--batch-size N|full", "mini-batch size, or full-batch gradient descent",
           d::kBatchSize > 0 ? std::to_string(d::kBatchSize) : std::string("full"));
  h += row("--optimizer NAME", names_with_bars(optimizer_names()), d::kOptimizer);
  h += row("--lr X", "learning rate (by optimizer, see below)",
           d::kLearningRate > 0 ? format_g(d::kLearningRate) : std::string("by optimizer"));
  std::string rates;
  for (const auto& o : d::kOptimizers) rates += (rates.empty() ? "" : ", ") + std::string(o.name) + " " + format_g(o.learning_rate);
  h += std::string(27, ' ') + rates + "\n";
  h += row("--schedule NAME", names_with_bars(schedule_names()), d::kSchedule);
  h += row("--momentum X", "momentum / nesterov coefficient", format_g(d::kMomentum));
  h += row("--activation NAME", names_with_bars(activation_names()), d::kActivation);
  h += row("--loss NAME", "cross_entropy|mse (.npz: squared_error|binary_cross_entropy|poisson)", d::kLoss);
  h += row("--init NAME", "auto: He for the ReLU family, else Glorot uniform", d::kInit);
  h += std::string(27, ' ') + "or " + initializer_names() + "\n";
  h += row("--weight-decay X", "L2 lambda; adamw: decoupled decay, default " + format_g(d::kWeightDecayAdamw),
           d::kWeightDecay >= 0 ? format_g(d::kWeightDecay) : std::string("0"));
  h += row("--dropout P", "probability of dropping a hidden unit", format_g(d::kDropout));
  h += row("--clip-value X", "clip gradients element-wise to [-X, X]", off_or(d::kClipValue));
  h += row("--clip-norm X", "clip the global gradient norm to X", off_or(d::kClipNorm));
  h += row("--batch-norm WHERE", "normalise hidden layers: before|after activation",
           TrainConfig().batch_norm == BATCH_NORM_NONE ? "off" : batch_norm_name(TrainConfig().batch_norm));
  h += row("--batch-norm-momentum X", "running = (1 - X) running + X batch statistic",
           format_g(TrainConfig().batch_norm_momentum));
  h += row("--seed N", "initialisation, shuffling and dropout seed",
           d::kSeed >= 0 ? std::to_string(d::kSeed) : std::string("drawn, printed"));
  h += row("--dtype float32|float64", "arithmetic precision", "float32");
  h += row("--limit N", "train on the first N images (rows) only", "all");
  h += row("--test-limit N", "test on the first N images (rows) only", "all");
  h += row("--shuffle, --no-shuffle", "reshuffle the samples every epoch", d::kShuffle ? "shuffle" : "no shuffle");
  h += row("--threads N", "worker threads ($MLP_NUM_THREADS, else all cores)", "all");
  h += row("--gemm own|blas", "matrix products: own GEMM or linked CBLAS ($MLP_GEMM)",
           gemm_backend() == GemmBackend::blas ? "blas" : "own");
  h += row("--out PATH", "save the model (.npz, read by numpy and mlp)", "none");
  h += row("--quiet, -q", "print only the final test accuracy", "off");
  return h;
}

const char* const kEvaluateHelp =
    "usage: mlp-cpp evaluate MODEL.npz --data DIR|FILE.npz [--test-limit N] [--predictions OUT.npz]\n"
    "                        [--threads N] [--gemm own|blas]\n"
    "\n"
    "Print the architecture of a model file (written by mlp-cpp or by the Python package) and its\n"
    "accuracy and mean loss on the test split in DIR. A model trained on real-valued targets (loss\n"
    "squared_error, binary_cross_entropy or poisson, no classes) is evaluated on X_test, y_test of FILE.npz:\n"
    "mean squared error, R^2 and its loss (binary_cross_entropy: also the share of rows entirely right).\n"
    "--predictions writes the network's outputs, an (n, outputs) array named 'predictions', to OUT.npz.\n";

const char* const kConvertHelp =
    "usage: mlp-cpp convert --data DIR --out DIR2\n"
    "\n"
    "Read the train and test splits from DIR (any supported layout) and write DIR2/train.mlpd and\n"
    "DIR2/test.mlpd.\n";

const char* const kMainHelp =
    "usage: mlp-cpp COMMAND [options]      (mlp-cpp COMMAND --help for the options)\n"
    "\n"
    "commands:\n"
    "  train      train a network on MNIST (or on real-valued targets in an .npz) and optionally save it\n"
    "  evaluate   test accuracy (or mean squared error and R^2) of a saved model (C++ or Python)\n"
    "  convert    write the .mlpd binary data files\n"
    "  version    print the version and build options\n";

// ---- command-line parsing -----------------------------------------------------------------------

class Args {
 public:
  Args(int argc, char** argv, int first, const std::vector<std::string>& valued,
       const std::vector<std::string>& flags) {
    for (int i = first; i < argc; ++i) {
      std::string a = argv[i];
      if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
        std::string value;
        bool has_value = false;
        const std::size_t eq = a.find('=');
        if (eq != std::string::npos) {
          value = a.substr(eq + 1);
          a = a.substr(0, eq);
          has_value = true;
        }
        const std::string key = a.substr(2);
        if (contains(flags, key)) {
          if (has_value) throw UsageError("option --" + key + " takes no value");
          values_[key] = "1";
        } else if (contains(valued, key)) {
          if (!has_value) {
            if (i + 1 >= argc) throw UsageError("option --" + key + " needs a value");
            value = argv[++i];
          }
          if (values_.count(key)) throw UsageError("option --" + key + " given twice");
          values_[key] = value;
        } else {
          throw UsageError("unknown option --" + key + renamed(key));
        }
      } else if (a == "-h") {
        values_["help"] = "1";
      } else if (a == "-q" && contains(flags, "quiet")) {
        values_["quiet"] = "1";
      } else if (!a.empty() && a[0] == '-' && a.size() > 1) {
        throw UsageError("unknown option " + a);
      } else {
        positional_.push_back(a);
      }
    }
  }
  bool has(const std::string& key) const { return values_.count(key) != 0; }
  std::string get(const std::string& key, const std::string& fallback = "") const {
    auto it = values_.find(key);
    return it == values_.end() ? fallback : it->second;
  }
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  // The flags renamed to the Python CLI's names (mlp train): a hint for an old command line.
  static std::string renamed(const std::string& key) {
    if (key == "train-limit") return " (now --limit, as in mlp train)";
    if (key == "learning-rate") return " (use --lr, as in mlp train)";
    return "";
  }
  static bool contains(const std::vector<std::string>& v, const std::string& s) {
    for (const auto& x : v)
      if (x == s) return true;
    return false;
  }
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

// Fails early (before any training) when an output file could not be written: its folder is missing
// or not writable, the path is a folder, a device, a FIFO or a socket, or a file of another kind than
// the writer's (files.hpp, with the messages of mlp._files.check_writable and refuse_foreign, and
// the names the mlp command gives the paths: "--out", "destination").
void check_writable(const std::string& path, const Writer& writer) { check_can_write(path, writer); }

// --predictions replaces only an .npz of predictions (what it writes), as mlp convert replaces only
// its own .npz: never a model, a data set or a user's other file.
Writer predictions_writer() {
  return Writer{"--predictions", [](const std::string& path) {
    return not_npz_with(path, "predictions", "an .npz of predictions");
  }};
}

long long parse_int(const std::string& text, const std::string& option, long long lo, long long hi) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE || v < lo || v > hi)
    throw UsageError("--" + option + " must be an integer in [" + std::to_string(lo) + ", " +
                     std::to_string(hi) + "], got '" + text + "'");
  return v;
}

double parse_number(const std::string& text, const std::string& option, double lo, bool lo_inclusive,
                    double hi = HUGE_VAL, bool hi_inclusive = true) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  const bool ok = !text.empty() && *end == '\0' && std::isfinite(v) && (lo_inclusive ? v >= lo : v > lo) &&
                  (hi_inclusive ? v <= hi : v < hi);
  if (!ok) {
    const std::string range = std::string(lo_inclusive ? "[" : "(") + format_g(lo) + ", " +
                              (std::isinf(hi) ? std::string("inf)") : format_g(hi) + (hi_inclusive ? "]" : ")"));
    throw UsageError("--" + option + " must be a number in " + range + ", got '" + text + "'");
  }
  return v;
}

// "128,64" -> {128, 64}; the limits are the model file's (mlp.options.MAX_WIDTH, MAX_HIDDEN_LAYERS), so
// that every network trained here can be saved and read back, by this program and by Python.
std::vector<int> parse_hidden(const std::string& text) {
  std::vector<int> sizes;
  if (text.empty() || text == "none") return sizes;
  const std::size_t layers = 1 + static_cast<std::size_t>(std::count(text.begin(), text.end(), ','));
  if (layers > defaults::kMaxHiddenLayers)  // (mlp.options.check_hidden_sizes's words)
    throw UsageError("--hidden has " + std::to_string(layers) + " layers; a model file holds at most " +
                     std::to_string(defaults::kMaxHiddenLayers) + " hidden layers");
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    const std::string part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    errno = 0;
    char* end = nullptr;
    const long long v = std::strtoll(part.c_str(), &end, 10);
    if (part.empty() || *end != '\0' || v < 1 || (errno == ERANGE && v < 0))
      throw UsageError("--hidden must be comma-separated positive widths such as 128,64, got '" + text + "'");
    if (errno == ERANGE || v > defaults::kMaxWidth)
      throw UsageError("--hidden holds a width of " +
                       (errno == ERANGE ? part : with_commas(static_cast<std::size_t>(v))) +
                       "; a model file holds layer widths at most " +
                       with_commas(static_cast<std::size_t>(defaults::kMaxWidth)));
    sizes.push_back(static_cast<int>(v));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return sizes;
}

std::string require_data(const Args& args) {
  if (!args.has("data")) throw UsageError("--data DIR is required (the folder with the MNIST files)");
  return args.get("data");
}

// --data names an .npz of real-valued targets (X_train, y_train, ...) rather than a folder of images.
bool is_value_data(const std::string& data) {
  return data.size() > 4 && data.compare(data.size() - 4, 4, ".npz") == 0;
}

template <class T>
std::vector<T> cast_values(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

// Refuses targets outside [0, 1] for binary cross-entropy and negative ones for poisson (as mlp.fit's
// check_targets).
void check_target_range(const ValueDataset& d, int loss) {
  if (loss == POISSON)
    for (std::size_t i = 0; i < d.Y.size(); ++i)
      if (!(d.Y[i] >= 0.0))
        throw std::runtime_error(d.source + ": loss poisson needs non-negative targets (counts), but y_" + d.split +
                                 " holds " + format_g(d.Y[i]) + " (element " + std::to_string(i) + ")");
  if (loss != BINARY_CROSS_ENTROPY) return;
  for (std::size_t i = 0; i < d.Y.size(); ++i)
    if (d.Y[i] < 0.0 || d.Y[i] > 1.0)
      throw std::runtime_error(d.source + ": loss binary_cross_entropy needs targets in [0, 1], but y_" + d.split + " holds " +
                               format_g(d.Y[i]) + " (element " + std::to_string(i) + ")");
}

template <class T>
void print_value_scores(const ValueScores& s, int loss, std::size_t n) {
  if (loss == BINARY_CROSS_ENTROPY)
    std::printf("test accuracy %.4f  (rows entirely right; mse %.6g, r2 %.4f, loss %.6g, %zu rows)\n", s.accuracy,
                s.mse, s.r2, s.loss, n);
  else
    std::printf("test mse %.6g  r2 %.4f  (loss %.6g, %zu rows)\n", s.mse, s.r2, s.loss, n);
}

// Trains `batch` with one printed line per epoch (the accuracy with classes) and the model and
// training-time lines after; the wall seconds of the epochs are what "training time" reports.
template <class T>
Model<T> train_and_report(const TrainConfig& config, const Batch<T>& batch, int n_features, int n_outputs,
                          bool with_accuracy, bool quiet) {
  const int width = static_cast<int>(std::to_string(config.epochs).size());
  double total_seconds = 0.0;
  auto on_epoch = [&](const EpochStats& s) {
    total_seconds += s.seconds;
    if (quiet) return;
    if (with_accuracy)
      std::printf("epoch %*d/%d  loss %.4f  acc %.4f  lr %.2e  cpu %.3fs  %.3fs\n", width, s.epoch, s.epochs, s.loss,
                  s.accuracy, s.lr, s.cpu_seconds, s.seconds);
    else
      std::printf("epoch %*d/%d  loss %.6g  lr %.2e  cpu %.3fs  %.3fs\n", width, s.epoch, s.epochs, s.loss, s.lr,
                  s.cpu_seconds, s.seconds);
    if (profiling())
      std::printf("profile order %.4fs  gather %.4fs  gemm %.4fs  elementwise %.4fs  update %.4fs  other %.4fs\n",
                  s.order_seconds, s.gather_seconds, s.gemm_seconds, s.elementwise_seconds, s.update_seconds,
                  s.seconds - s.order_seconds - s.gather_seconds - s.gemm_seconds - s.elementwise_seconds -
                      s.update_seconds);
    std::fflush(stdout);
  };
  Model<T> model = train<T>(config, batch, n_features, n_outputs, on_epoch);
  if (!quiet) std::printf("model: %s\n", model.describe().c_str());
  if (config.epochs > 0 && !quiet) std::printf("training time: %.3fs\n", total_seconds);
  return model;
}

template <class T>
void save_trained(const Model<T>& model, const std::string& out, bool quiet) {
  if (out.empty()) return;
  const std::string note = save_model(model, out, "--out");
  if (!note.empty()) std::fprintf(stderr, "mlp-cpp: warning: %s\n", note.c_str());
  if (!quiet) std::printf("saved %s\n", out.c_str());
}

// Training on real-valued targets: X and Y as given, no classes, no image preprocessing.
template <class T>
int run_train_values(const TrainConfig& config, const ValueDataset& train_set, const ValueDataset* test_set,
                     const std::string& out, bool quiet) {
  check_target_range(train_set, config.loss);
  const std::vector<T> X = cast_values<T>(train_set.X), Y = cast_values<T>(train_set.Y);
  Batch<T> batch;
  batch.X = X.data();
  batch.Y = Y.data();
  batch.n = train_set.n;
  if (!quiet) {
    std::printf("data: %zu training rows of %zu features and %zu output%s from %s; %zu test rows\n", train_set.n,
                train_set.features, train_set.outputs, train_set.outputs == 1 ? "" : "s", train_set.source.c_str(),
                test_set ? test_set->n : std::size_t(0));
    std::fflush(stdout);
  }
  const Model<T> model = train_and_report<T>(config, batch, static_cast<int>(train_set.features),
                                             static_cast<int>(train_set.outputs), false, quiet);
  if (test_set && test_set->n > 0) {
    const std::vector<T> Xt = cast_values<T>(test_set->X), Yt = cast_values<T>(test_set->Y);
    print_value_scores<T>(evaluate_values(model, Xt.data(), Yt.data(), test_set->n), model.loss, test_set->n);
  }
  save_trained(model, out, quiet);
  return 0;
}

// evaluate for a model without classes: X_test, y_test of an .npz; optionally the outputs to an .npz.
template <class T>
int evaluate_values_file(const Model<T>& m, const std::string& data, long long test_limit,
                         const std::string& predictions) {
  if (!is_value_data(data))
    throw std::runtime_error("the model has loss " + std::string(loss_name(m.loss)) +
                             " (real-valued targets, no classes): give --data FILE.npz holding X_test and y_test");
  const NpzArchive archive(data);
  ValueDataset test_set = load_value_split(archive, "test");
  if (test_limit > 0) truncate(test_set, static_cast<std::size_t>(test_limit));
  if (test_set.features != static_cast<std::size_t>(m.sizes[0]))
    throw std::runtime_error(test_set.source + ": X_test has " + std::to_string(test_set.features) +
                             " features but the model was trained on " + std::to_string(m.sizes[0]));
  if (test_set.outputs != static_cast<std::size_t>(m.sizes.back()))
    throw std::runtime_error(data + ": y_test has " + std::to_string(test_set.outputs) +
                             " outputs but the model has " + std::to_string(m.sizes.back()));
  check_target_range(test_set, m.loss);
  const std::vector<T> X = cast_values<T>(test_set.X), Y = cast_values<T>(test_set.Y);
  std::vector<T> outputs;
  const ValueScores s = evaluate_values(m, X.data(), Y.data(), test_set.n, predictions.empty() ? nullptr : &outputs);
  print_value_scores<T>(s, m.loss, test_set.n);
  if (!predictions.empty()) {
    const std::vector<std::size_t> shape = {test_set.n, test_set.outputs};
    write_npz(predictions, {sizeof(T) == 4 ? NpyArray::from_floats("predictions", reinterpret_cast<const float*>(outputs.data()), shape)
                                           : NpyArray::from_doubles("predictions", reinterpret_cast<const double*>(outputs.data()), shape)},
              predictions_writer());
    std::printf("wrote %s\n", predictions.c_str());
  }
  return 0;
}

void apply_threads(const Args& args) {
  if (args.has("threads")) set_num_threads(static_cast<int>(parse_int(args.get("threads"), "threads", 1, 1024)));
}

// --gemm, else $MLP_GEMM (a wrong value is an error rather than a silent fallback).
void apply_gemm(const Args& args) {
  const char* env = std::getenv("MLP_GEMM");
  const bool flag = args.has("gemm");
  if (!flag && !(env && *env)) return;
  const std::string name = flag ? args.get("gemm") : env;
  const std::string where = flag ? "--gemm" : "$MLP_GEMM";
  GemmBackend backend;
  try {
    backend = gemm_backend_from_name(name);
    set_gemm_backend(backend);
  } catch (const std::invalid_argument& e) {
    throw UsageError(where + ": " + e.what());
  }
}

// Labels -> class indices, given the sorted class values.
std::vector<int32_t> label_indices(const Dataset& d, const std::vector<int64_t>& classes, bool strict,
                                   const std::string& what) {
  std::vector<int32_t> index(256, -1);
  for (std::size_t i = 0; i < classes.size(); ++i)
    if (classes[i] >= 0 && classes[i] < 256) index[static_cast<std::size_t>(classes[i])] = static_cast<int32_t>(i);
  std::vector<int32_t> y(d.n);
  for (std::size_t i = 0; i < d.n; ++i) {
    y[i] = index[d.labels[i]];
    if (y[i] < 0 && strict)
      throw std::runtime_error(what + ": label " + std::to_string(d.labels[i]) + " of example " + std::to_string(i) +
                               " is not one of the model's classes");
  }
  return y;
}

// Mean loss and accuracy on a data set whose labels may include classes the model lacks (counted wrong).
template <class T>
std::pair<double, double> evaluate_dataset(const Model<T>& m, const Dataset& d, double divisor = 255.0) {
  if (d.features() != static_cast<std::size_t>(m.sizes[0]))
    throw std::runtime_error(d.source + ": the images have " + std::to_string(d.features()) +
                             " pixels but the model was trained on " + std::to_string(m.sizes[0]) + " features");
  std::vector<int32_t> y = label_indices(d, m.classes, false, d.source);
  std::vector<uint8_t> known(d.n);
  std::size_t unknown = 0;
  for (std::size_t i = 0; i < d.n; ++i)
    if (y[i] < 0) { y[i] = 0; ++unknown; known[i] = 0; } else known[i] = 1;
  const std::vector<T> X = scale_pixels<T>(d.pixels.data(), d.pixels.size(), divisor);
  if (unknown == 0) return evaluate(m, X.data(), y.data(), d.n);
  // Rare path (labels outside the model's classes): evaluate the known rows only for the loss and
  // count the others as errors.
  std::vector<T> Xk;
  std::vector<int32_t> yk;
  for (std::size_t i = 0; i < d.n; ++i)
    if (known[i]) {
      Xk.insert(Xk.end(), X.begin() + static_cast<std::ptrdiff_t>(i * d.features()),
                X.begin() + static_cast<std::ptrdiff_t>((i + 1) * d.features()));
      yk.push_back(y[i]);
    }
  auto r = evaluate(m, Xk.data(), yk.data(), yk.size());
  return {r.first, r.second * static_cast<double>(yk.size()) / static_cast<double>(d.n)};
}

template <class T>
int run_train(const TrainConfig& config, Dataset& train_set, Dataset& test_set, const std::string& out, bool quiet) {
  // Classes: the sorted distinct training labels (as mlp.fit's check_labels).
  std::vector<int64_t> classes;
  {
    bool seen[256] = {false};
    for (uint8_t v : train_set.labels) seen[v] = true;
    for (int v = 0; v < 256; ++v)
      if (seen[v]) classes.push_back(v);
  }
  if (classes.size() < 2) throw std::runtime_error(train_set.source + ": the training labels hold fewer than 2 classes");
  const std::vector<int32_t> y = label_indices(train_set, classes, true, train_set.source);
  Batch<T> batch;
  batch.pixels = train_set.pixels.data();
  batch.y = y.data();
  batch.n = train_set.n;
  if (!quiet) {
    std::printf("data: %zu training images of %zux%zu from %s; %zu test images\n", train_set.n, train_set.rows,
                train_set.cols, train_set.source.c_str(), test_set.n);
    std::fflush(stdout);
  }
  Model<T> model = train_and_report<T>(config, batch, static_cast<int>(train_set.features()),
                                       static_cast<int>(classes.size()), true, quiet);
  model.classes = classes;
  model.image_rows = static_cast<int>(train_set.rows);
  model.image_cols = static_cast<int>(train_set.cols);
  if (test_set.n > 0) {
    const auto result = evaluate_dataset(model, test_set);
    std::printf("test accuracy %.4f  (loss %.4f, %zu images)\n", result.second, result.first, test_set.n);
  }
  save_trained(model, out, quiet);
  return 0;
}

// --optimizer, --schedule, --activation, --loss, --init: names from the generated tables.
void parse_names(const Args& args, bool values, TrainConfig& c) {
  if (args.has("optimizer")) {
    c.optimizer = args.get("optimizer");
    if (!is_optimizer(c.optimizer))
      throw UsageError("unknown optimizer '" + c.optimizer + "'; choose " + optimizer_names());
  }
  if (args.has("schedule")) {
    c.schedule = args.get("schedule");
    if (!is_schedule(c.schedule)) throw UsageError("unknown schedule '" + c.schedule + "'; choose " + schedule_names());
  }
  if (args.has("activation")) {
    c.activation = activation_from_name(args.get("activation"));
    if (c.activation < 0)
      throw UsageError("unknown activation '" + args.get("activation") + "'; choose " + activation_names());
  }
  if (args.has("loss")) {
    c.loss = loss_from_name(args.get("loss"));
    if (c.loss < 0) throw UsageError("unknown loss '" + args.get("loss") + "'; choose " + loss_names());
    if (values && takes_class_indices(c.loss))
      throw UsageError("--loss " + args.get("loss") + " trains on class labels; with --data FILE.npz (real-valued "
                       "targets) choose squared_error, binary_cross_entropy or poisson");
    if (!values && !takes_class_indices(c.loss))
      throw UsageError("--loss " + args.get("loss") + " trains on real-valued targets: give them as --data FILE.npz "
                       "(X_train, y_train, X_test, y_test)");
  } else if (values) {
    c.loss = SQUARED_ERROR;
  }
  if (args.has("init")) {
    c.init = args.get("init");
    if (c.init != "auto" && !is_initializer(c.init))
      throw UsageError("unknown init '" + c.init + "'; choose auto, " + initializer_names());
  }
}

// --seed, else the table's default, else (as mlp.fit(seed=None)) a fresh seed, printed so that the
// run can be repeated.
uint64_t parse_seed(const Args& args) {
  if (args.has("seed")) return static_cast<uint64_t>(parse_int(args.get("seed"), "seed", 0, (1LL << 62)));
  if (defaults::kSeed >= 0) return static_cast<uint64_t>(defaults::kSeed);
  std::random_device device;
  const uint64_t seed = ((static_cast<uint64_t>(device()) << 32) ^ device()) & ((uint64_t(1) << 31) - 1);
  if (!args.has("quiet"))
    std::printf("seed %llu (drawn; --seed %llu repeats this run)\n", static_cast<unsigned long long>(seed),
                static_cast<unsigned long long>(seed));
  return seed;
}

// The training options of the command line (mlp train's flag names), over TrainConfig's defaults.
TrainConfig parse_train_config(const Args& args, bool values) {
  TrainConfig c;
  if (args.has("hidden")) c.hidden = parse_hidden(args.get("hidden"));
  if (args.has("epochs")) c.epochs = static_cast<int>(parse_int(args.get("epochs"), "epochs", 0, 1000000));
  if (args.has("batch-size")) {
    const std::string b = args.get("batch-size");
    c.batch_size = b == "full" ? 0 : static_cast<int>(parse_int(b, "batch-size", 1, 1 << 30));
  }
  if (args.has("lr")) c.lr = parse_number(args.get("lr"), "lr", 0.0, false);
  if (args.has("momentum")) c.momentum = parse_number(args.get("momentum"), "momentum", 0.0, true, 1.0, false);
  parse_names(args, values, c);
  if (args.has("weight-decay")) c.weight_decay = parse_number(args.get("weight-decay"), "weight-decay", 0.0, true);
  if (args.has("dropout")) c.dropout = parse_number(args.get("dropout"), "dropout", 0.0, true, 1.0, false);
  if (args.has("clip-value")) c.clip_value = parse_number(args.get("clip-value"), "clip-value", 0.0, false);
  if (args.has("clip-norm")) c.clip_norm = parse_number(args.get("clip-norm"), "clip-norm", 0.0, false);
  if (args.has("batch-norm")) {
    c.batch_norm = batch_norm_from_name(args.get("batch-norm"));
    if (c.batch_norm <= BATCH_NORM_NONE)
      throw UsageError("--batch-norm must be before or after, got '" + args.get("batch-norm") + "'");
  }
  if (args.has("batch-norm-momentum"))
    c.batch_norm_momentum = parse_number(args.get("batch-norm-momentum"), "batch-norm-momentum", 0.0, false, 1.0, true);
  if (args.has("shuffle") && args.has("no-shuffle")) throw UsageError("give --shuffle or --no-shuffle, not both");
  if (args.has("shuffle")) c.shuffle = true;
  if (args.has("no-shuffle")) c.shuffle = false;
  c.seed = parse_seed(args);
  return c;
}

// What to train on and where the model goes: --data, --limit, --test-limit, --dtype, --out, --quiet.
struct TrainRun {
  std::string data, dtype, out;
  long long limit = -1, test_limit = -1;  // -1: all
  bool quiet = false;
};

TrainRun parse_train_run(const Args& args) {
  TrainRun r;
  r.data = require_data(args);
  r.dtype = args.get("dtype", "float32");
  if (r.dtype != "float32" && r.dtype != "float64")
    throw UsageError("--dtype must be float32 or float64, got '" + r.dtype + "'");
  if (args.has("limit")) r.limit = parse_int(args.get("limit"), "limit", 1, 1LL << 40);
  if (args.has("test-limit")) r.test_limit = parse_int(args.get("test-limit"), "test-limit", 0, 1LL << 40);
  r.out = args.get("out");
  if (args.has("out") && r.out.empty()) throw UsageError("--out needs a file name");
  r.quiet = args.has("quiet");
  return r;
}

// Training on X_train, y_train (and X_test, y_test when present) of an .npz of real-valued targets.
int train_on_values(const TrainConfig& c, const TrainRun& r) {
  const NpzArchive archive(r.data);
  ValueDataset train_set = load_value_split(archive, "train");
  ValueDataset test_set;
  const bool has_test = has_value_split(archive, "test");
  if (has_test) test_set = load_value_split(archive, "test");
  if (r.limit > 0) truncate(train_set, static_cast<std::size_t>(r.limit));
  if (r.test_limit >= 0) truncate(test_set, static_cast<std::size_t>(r.test_limit));
  if (has_test && (test_set.features != train_set.features || test_set.outputs != train_set.outputs))
    throw std::runtime_error(r.data + ": X_test, y_test have " + std::to_string(test_set.features) + " features and " +
                             std::to_string(test_set.outputs) + " outputs but X_train, y_train have " +
                             std::to_string(train_set.features) + " and " + std::to_string(train_set.outputs));
  check_target_range(train_set, c.loss);
  if (has_test) check_target_range(test_set, c.loss);
  const ValueDataset* test = has_test ? &test_set : nullptr;
  return r.dtype == "float32" ? run_train_values<float>(c, train_set, test, r.out, r.quiet)
                              : run_train_values<double>(c, train_set, test, r.out, r.quiet);
}

// Training on the images of a folder (train and test splits).
int train_on_images(const TrainConfig& c, const TrainRun& r) {
  Dataset train_set = load_split(r.data, "train");
  Dataset test_set = load_split(r.data, "test");
  if (r.limit > 0) truncate(train_set, static_cast<std::size_t>(r.limit));
  if (r.test_limit >= 0) truncate(test_set, static_cast<std::size_t>(r.test_limit));
  if (test_set.n > 0 && test_set.features() != train_set.features())
    throw std::runtime_error(test_set.source + ": test images are " + std::to_string(test_set.rows) + "x" +
                             std::to_string(test_set.cols) + " but training images are " +
                             std::to_string(train_set.rows) + "x" + std::to_string(train_set.cols));
  return r.dtype == "float32" ? run_train<float>(c, train_set, test_set, r.out, r.quiet)
                              : run_train<double>(c, train_set, test_set, r.out, r.quiet);
}

int cmd_train(int argc, char** argv) {
  const Args args(argc, argv, 2,
                  {"data", "hidden", "epochs", "batch-size", "optimizer", "lr", "schedule", "momentum", "activation",
                   "loss", "init", "weight-decay", "dropout", "clip-value", "clip-norm", "batch-norm",
                   "batch-norm-momentum", "seed", "dtype", "limit", "test-limit", "threads", "gemm", "out"},
                  {"help", "quiet", "shuffle", "no-shuffle"});
  if (args.has("help")) {
    std::fputs(train_help().c_str(), stdout);
    return 0;
  }
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  const TrainRun run = parse_train_run(args);
  const bool values = is_value_data(run.data);
  const TrainConfig config = parse_train_config(args, values);
  apply_threads(args);
  apply_gemm(args);
  if (!run.out.empty()) check_writable(run.out, model_writer("--out"));
  return values ? train_on_values(config, run) : train_on_images(config, run);
}

int cmd_evaluate(int argc, char** argv) {
  const Args args(argc, argv, 2, {"data", "test-limit", "threads", "gemm", "predictions"}, {"help"});
  if (args.has("help")) {
    std::fputs(kEvaluateHelp, stdout);
    return 0;
  }
  if (args.positional().size() != 1) throw UsageError("evaluate needs exactly one model file (mlp-cpp evaluate MODEL.npz --data DIR)");
  const std::string dir = require_data(args);
  apply_threads(args);
  apply_gemm(args);
  const std::string predictions = args.get("predictions");
  if (args.has("predictions") && predictions.empty()) throw UsageError("--predictions needs a file name");
  const long long test_limit = args.has("test-limit") ? parse_int(args.get("test-limit"), "test-limit", 1, 1LL << 40) : -1;
  if (!predictions.empty()) check_writable(predictions, predictions_writer());
  const AnyModel any = load_model(args.positional()[0]);
  const int loss = any.dtype == "float32" ? any.f32.loss : any.f64.loss;
  if (!takes_class_indices(loss)) {
    if (any.dtype == "float32") {
      std::printf("model: %s\n", any.f32.describe().c_str());
      return evaluate_values_file(any.f32, dir, test_limit, predictions);
    }
    std::printf("model: %s\n", any.f64.describe().c_str());
    return evaluate_values_file(any.f64, dir, test_limit, predictions);
  }
  if (!predictions.empty())
    throw UsageError("--predictions is for models trained on real-valued targets (squared_error, binary_cross_entropy, poisson)");
  if (is_value_data(dir))
    throw std::runtime_error(args.positional()[0] + " is a classifier (loss " + loss_name(loss) +
                             "): evaluate it on images (--data DIR), not on " + dir);
  const double divisor =
      pixel_divisor(any.dtype == "float32" ? any.f32.metadata : any.f64.metadata, args.positional()[0]);
  Dataset test_set = load_split(dir, "test");
  if (test_limit > 0) truncate(test_set, static_cast<std::size_t>(test_limit));
  std::pair<double, double> r;
  if (any.dtype == "float32") {
    std::printf("model: %s\n", any.f32.describe().c_str());
    r = evaluate_dataset(any.f32, test_set, divisor);
  } else {
    std::printf("model: %s\n", any.f64.describe().c_str());
    r = evaluate_dataset(any.f64, test_set, divisor);
  }
  std::printf("test accuracy %.4f  (loss %.4f, %zu images)\n", r.second, r.first, test_set.n);
  return 0;
}

int cmd_convert(int argc, char** argv) {
  const Args args(argc, argv, 2, {"data", "out"}, {"help"});
  if (args.has("help")) {
    std::fputs(kConvertHelp, stdout);
    return 0;
  }
  if (!args.positional().empty()) throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  const std::string dir = require_data(args);
  if (!args.has("out") || args.get("out").empty()) throw UsageError("--out DIR is required");
  const std::string out_dir = args.get("out");
  for (const char* split : {"train", "test"}) check_writable(out_dir + "/" + split + ".mlpd", mlpd_writer());
  for (const char* split : {"train", "test"}) {
    const Dataset d = load_split(dir, split);
    const std::string path = out_dir + "/" + split + ".mlpd";
    write_mlpd(path, d);
    std::printf("wrote %s (%zu images)\n", path.c_str(), d.n);
  }
  return 0;
}

int dispatch(int argc, char** argv) {
  if (argc < 2) throw UsageError("missing command; try 'mlp-cpp --help'");
  const std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(kMainHelp, stdout);
    return 0;
  }
  if (cmd == "--version" || cmd == "version") {
    std::printf("mlp-cpp %s (gemm %s%s%s; inflate %s; %d thread%s)\n", defaults::kVersion,
                gemm_backend_description(gemm_backend()).c_str(), gemm_has_blas() ? ", also " : "",
                gemm_has_blas() ? gemm_backend_description(gemm_backend() == GemmBackend::own ? GemmBackend::blas
                                                                                            : GemmBackend::own).c_str()
                                : "",
                inflate_backend(), num_threads(), num_threads() == 1 ? "" : "s");
    return 0;
  }
  if (cmd == "train") return cmd_train(argc, argv);
  if (cmd == "evaluate") return cmd_evaluate(argc, argv);
  if (cmd == "convert") return cmd_convert(argc, argv);
  throw UsageError("unknown command '" + cmd + "'; choose train, evaluate, convert or version");
}

// One line: newlines inside a message would break the "one line on stderr" promise.
std::string one_line(std::string s) {
  for (char& ch : s)
    if (ch == '\n' || ch == '\r') ch = ' ';
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  // Under a file-size limit (ulimit -f) a write past it would kill the process without a word and
  // leave its temporary file; ignored, the write fails with EFBIG and is reported like any other.
  std::signal(SIGXFSZ, SIG_IGN);
  try {
    return dispatch(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "mlp-cpp: error: %s\n", one_line(e.what()).c_str());
    return 2;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "mlp-cpp: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mlp-cpp: error: %s\n", one_line(e.what()).c_str());
    return 1;
  }
}
