"""
Misclassified digits and the confusion matrix
=============================================

Accuracy is one number; the confusion matrix says which digits are taken for which, and the most
confident mistakes show what the network got wrong.
"""

import mlp
import mlp.metrics
import mlp.plots

(X_train, y_train), (X_test, y_test) = mlp.datasets.load_mnist()
model = mlp.fit(X_train[:10_000], y_train[:10_000], hidden_sizes=[128], epochs=10, seed=0)

# %%
# The confusion matrix
# --------------------
# Row = the true digit, column = the prediction; the diagonal holds the correct answers. Off the
# diagonal, the largest counts name the pairs the network confuses (4 and 9, 3 and 5, 7 and 2 are
# the usual ones).
fig = mlp.plots.plot_confusion_matrix(model, X_test, y_test)

# %%
# Per-class precision and recall
# ------------------------------
# :func:`mlp.metrics.classification_report` gives the same counts per class, as numbers.
report = mlp.metrics.classification_report(y_test, model.predict(X_test))
print(report)

# %%
# The most confident mistakes
# ---------------------------
# The wrong predictions the model was surest of, with the predicted label and its probability and
# the true label. Some are digits a person would misread too; some are badly written or mislabelled.
fig = mlp.plots.plot_confident_mistakes(model, X_test, y_test, n=16)

# %%
# A grid of predictions
# ---------------------
# The first test images with their predicted and true labels; wrong ones in red.
fig = mlp.plots.plot_predictions(model, X_test, y_test, n=25)
