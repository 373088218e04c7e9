// model.cpp - Model's own methods (mlp/model.py's MLP: its size and description).
#include "model.hpp"

namespace mlp {

std::string with_commas(std::size_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
  return s;
}

template <class T>
std::size_t Model<T>::n_parameters() const {
  std::size_t total = 0;
  for (int l = 0; l < layers(); ++l)
    total += static_cast<std::size_t>(sizes[l]) * sizes[l + 1] + static_cast<std::size_t>(sizes[l + 1]);
  for (const Norm<T>& norm : norms) total += norm.gamma.size() + norm.beta.size();
  return total;
}

template <class T>
std::string Model<T>::describe() const {
  std::string s = "MLP(" + std::to_string(sizes[0]);
  const std::string act = activation_name(activation);  // "bn" where the layer is normalised, as MLP's repr
  const std::string hidden = batch_norm == BATCH_NORM_BEFORE ? "bn " + act : batch_norm == BATCH_NORM_AFTER ? act + " bn" : act;
  for (int l = 1; l + 1 < static_cast<int>(sizes.size()); ++l) s += " -> " + std::to_string(sizes[l]) + " " + hidden;
  s += " -> " + std::to_string(sizes.back()) + " " + output_activation_name(loss);
  s += "; loss=" + std::string(loss_name(loss)) + ", " + with_commas(n_parameters()) + " parameters, " +
       dtype_name<T>() + ")";
  return s;
}

template <class T>
void Model<T>::allocate() {
  W.clear();
  b.clear();
  for (int l = 0; l < layers(); ++l) {
    W.emplace_back(static_cast<std::size_t>(sizes[l]) * sizes[l + 1], T(0));
    b.emplace_back(static_cast<std::size_t>(sizes[l + 1]), T(0));
  }
  norms.clear();
  if (batch_norm == BATCH_NORM_NONE) return;
  for (int l = 0; l + 1 < layers(); ++l) {
    const std::size_t k = static_cast<std::size_t>(sizes[l + 1]);
    norms.push_back(Norm<T>{std::vector<T>(k, T(1)), std::vector<T>(k, T(0)), std::vector<T>(k, T(0)),
                            std::vector<T>(k, T(1))});
  }
}

template <class T>
std::vector<T>& Model<T>::trainable(std::size_t p) {
  const std::size_t dense = 2 * W.size();
  if (p < dense) return p % 2 == 0 ? W[p / 2] : b[p / 2];
  Norm<T>& norm = norms[(p - dense) / 2];
  return (p - dense) % 2 == 0 ? norm.gamma : norm.beta;
}

template <class T>
const std::vector<T>& Model<T>::trainable(std::size_t p) const {
  return const_cast<Model<T>*>(this)->trainable(p);
}

template struct Model<float>;
template struct Model<double>;

}  // namespace mlp
