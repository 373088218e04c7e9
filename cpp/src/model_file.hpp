// model_file.hpp - model files (.npz + strict JSON metadata), as mlp/model_file.py: save_model as
// save_model_file (with fit_metadata's trimming of a long history), load_model as load_model_file
// (check_model_metadata's checks, then read_params').
#pragma once

#include <string>

#include "json.hpp"
#include "model.hpp"
#include "npz.hpp"

namespace mlp {

// The divisor a model's metadata asks for: "preprocessing": {"input": "pixels / 255"} (also the
// default when absent) gives 255, "pixels" gives 1; anything else throws, naming it.
double pixel_divisor(const Json& metadata, const std::string& path);

// ---- model files (.npz, see the README's "The math, precisely") ------------------------------------------------------
// Writes the model file (write_file_atomic: a temporary file renamed into place). Returns a warning
// for the user, empty unless something was left out: when the history would take the metadata over
// defaults::kMaxMetadataBytes, its oldest epochs are (the newest that fit are kept, the weights
// always), as mlp.model_file.fit_metadata does, and the warning says how many, in Python's words.
// An existing file at path is replaced only when it is a model file itself (model_writer).
template <class T>
std::string save_model(const Model<T>& model, const std::string& path, const std::string& what = "model file");

// The writer of model files (mlp.model_file.check_replaceable): an existing file is replaced only
// when its metadata's "format" is "mlp-model"; anything else is refused with Python's words,
// "WHAT PATH exists and is not an mlp model file (it holds something else); give another path or
// delete it". Only the zip header, the directory and the metadata entry are looked at.
Writer model_writer(const std::string& what = "model file");

// A model file in whichever dtype it was saved: exactly one of f32 / f64 is filled.
struct AnyModel {
  std::string dtype;  // "float32" or "float64"
  Model<float> f32;
  Model<double> f64;
};
// Throws std::runtime_error("<path>: ...") for anything malformed or inconsistent. Every size in
// the metadata is checked against limits and against the sizes the archive declares for W<l>, b<l>
// before the weights are allocated or decompressed; entries with other names are not decompressed.
AnyModel load_model(const std::string& path);
AnyModel load_model(const NpzArchive& archive);  // an archive already open (the fuzz harness's)

}  // namespace mlp
