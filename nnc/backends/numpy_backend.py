"""The reference backend: the lecture's formulas in plain NumPy.

Every function writes its result into a preallocated ``out`` array (the
same contract as the compiled kernels), so the Python code above the
kernels is identical for both backends. Shapes: a batch is a row-major
``(n, features)`` array; ``W`` is ``(f_in, f_out)``. The elementwise
backward kernels (activations, dropout) must allow ``dx`` to be ``dy``: the
layers back-propagate through them in place.

The layers and losses check their arguments at the public API, so these
functions check little themselves: only what NumPy would otherwise turn
into a wrong number without an error (a label of -1 picks the last class,
a negative clipping limit swaps the bounds, an empty batch's mean is NaN,
an offset past the end slices short). The compiled kernels check
every shape too, because they index without bounds checks.
"""
import numpy as np

from nnc._validation import all_finite, as_index


class NumpyBackend:
    name = "numpy"

    # --- matrix product -----------------------------------------------------
    def gemm(self, a, b, out, trans_a=False, trans_b=False, alpha=1.0, beta=0.0):
        """out = alpha * op(a) @ op(b) + beta * out."""
        a = a.T if trans_a else a
        b = b.T if trans_b else b
        product = a @ b
        if beta == 0:
            np.multiply(product, alpha, out=out)
        else:
            out *= beta
            out += alpha * product

    # --- dense layer: z = x W + b -------------------------------------------
    def dense_forward(self, x, w, b, out):
        """Affine transform of the lecture, z = W x + b, for a batch of rows:
        with the samples as the rows of x and W stored (in, out), z = x W + b."""
        np.matmul(x, w, out=out)
        if b is not None:
            out += b

    def dense_backward(self, x, w, dy, dw, db, dx):
        """Chain rule through z = x W + b:
        dL/dW = xᵀ dL/dz,  dL/db = Σ_rows dL/dz,  dL/dx = dL/dz Wᵀ."""
        np.matmul(x.T, dy, out=dw)
        if db is not None:
            np.sum(dy, axis=0, out=db)
        if dx is not None:
            np.matmul(dy, w.T, out=dx)

    # --- activations h = g(z) and dL/dz = dL/dh * g'(z) ----------------------
    def relu_forward(self, x, out):
        np.maximum(x, 0, out=out)

    def relu_backward(self, y, dy, dx):
        """g'(z) = 1 where z > 0 (equivalently y > 0), else 0: dy passes where
        the unit is active (a select, not dy · [y > 0], which is NaN for inf)."""
        np.copyto(dx, np.where(y > 0, dy, 0))

    def leaky_relu_forward(self, x, alpha, out):
        np.copyto(out, np.where(x > 0, x, alpha * x))

    def leaky_relu_backward(self, x, alpha, dy, dx):
        np.copyto(dx, np.where(x > 0, dy, alpha * dy))

    def sigmoid_forward(self, x, out):
        """σ(z) = 1 / (1 + e^{-z}), written so that exp never overflows."""
        e = np.exp(-np.abs(x))
        np.copyto(out, np.where(x >= 0, 1 / (1 + e), e / (1 + e)))

    def sigmoid_backward(self, y, dy, dx):
        """σ'(z) = σ(z)(1 - σ(z))."""
        np.copyto(dx, dy * y * (1 - y))

    def tanh_forward(self, x, out):
        np.tanh(x, out=out)

    def tanh_backward(self, y, dy, dx):
        """tanh'(z) = 1 - tanh(z)²."""
        np.copyto(dx, dy * (1 - y * y))

    # --- batch normalisation (lecture, section 9) ----------------------------
    def batchnorm_forward_train(self, x, gamma, beta, running_mean, running_var, momentum,
                                eps, out, x_hat, batch_mean, batch_var, inv_std):
        """μ = 1/m Σ_i z_i;  σ² = 1/m Σ_i (z_i - μ)²;  ẑ = (z - μ)/sqrt(σ² + ε);
        z̃ = γ ẑ + β;  μ̂ ← ρ μ̂ + (1-ρ) μ;  σ̂² ← ρ σ̂² + (1-ρ) σ²  (ρ = ``momentum``)."""
        if x.shape[0] < 2:
            raise ValueError("batch-norm in training needs at least 2 samples per batch, "
                             f"got {x.shape[0]}")
        # In float64, in two passes: c = μ as computed (rounded), then z - c,
        # whose mean μ - c is 0 in exact arithmetic. σ² = mean((z-c)²) - (μ-c)²
        # is the σ² above, and subtracting μ - c makes a constant feature
        # give ẑ = 0 exactly (a float32 mean puts it off its own value).
        mean = x.mean(axis=0, dtype=np.float64)
        centered = x - mean
        residual = centered.mean(axis=0)
        var = np.maximum(np.mean(centered ** 2, axis=0) - residual ** 2, 0)
        std = np.sqrt(var + eps)
        batch_mean[...] = mean
        batch_var[...] = var
        inv_std[...] = 1 / std
        x_hat[...] = (centered - residual) / std
        out[...] = gamma * x_hat + beta
        running_mean[...] = momentum * running_mean + (1 - momentum) * batch_mean
        running_var[...] = momentum * running_var + (1 - momentum) * batch_var

    def batchnorm_forward_eval(self, x, gamma, beta, running_mean, running_var, eps, out):
        """ẑ = (z - μ̂)/sqrt(σ̂² + ε) with the running averages; z̃ = γ ẑ + β."""
        out[...] = gamma * (x - running_mean) / np.sqrt(running_var.astype(np.float64) + eps) + beta

    def batchnorm_backward(self, dy, x_hat, gamma, inv_std, dgamma, dbeta, dx):
        """dβ = Σ_i g_i;  dγ = Σ_i g_i ẑ_i;
        dz = γ/(m sqrt(σ² + ε)) · (m g - dβ - ẑ dγ)."""
        m = dy.shape[0]
        np.sum(dy, axis=0, out=dbeta)
        np.sum(dy * x_hat, axis=0, out=dgamma)
        dx[...] = gamma * inv_std / m * (m * dy - dbeta - x_hat * dgamma)

    # --- dropout --------------------------------------------------------------
    def dropout_forward(self, x, u, p, out):
        """Inverted dropout: keep = [u ≥ p] (u ~ U[0,1)); y = x · keep / (1-p)."""
        if not 0 <= p < 1:
            raise ValueError(f"p must lie in [0, 1), got {p}")
        out[...] = np.where(u >= p, x / (1 - p), 0)

    def dropout_backward(self, dy, u, p, dx):
        """The same mask and scale as the forward pass."""
        self.dropout_forward(dy, u, p, dx)

    # --- losses: mean over the batch, gradient into grad ---------------------
    def softmax_cross_entropy(self, logits, labels, grad=None):
        """L = -1/n Σ_i log softmax(z_i)[y_i], via the log-sum-exp trick;
        dL/dz_i = (softmax(z_i) - onehot(y_i)) / n."""
        n, k = logits.shape
        _check_nonempty(logits)
        _check_labels(labels, n, k)
        rows = np.arange(n)
        z = logits.astype(np.float64)  # a float32 log of a sum near 1 loses the loss
        shifted = z - z.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = -log_probs[rows, labels].mean()
        if grad is not None:
            probs = np.exp(log_probs)
            probs[rows, labels] -= 1
            grad[...] = probs / n
        return float(loss)

    def mean_squared_error(self, pred, target, grad=None):
        """L = mean((p - t)²) over all elements; dL/dp = 2 (p - t) / size."""
        _check_nonempty(pred)
        diff = pred - target
        if grad is not None:
            np.multiply(diff, 2.0 / diff.size, out=grad)
        return float(np.mean(diff.astype(np.float64) ** 2))

    def bce_with_logits(self, logits, target, grad=None):
        """L = mean(-t log σ(z) - (1-t) log(1-σ(z)))
             = mean(max(z, 0) - z t + log(1 + e^{-|z|}))   (stable form);
        dL/dz = (σ(z) - t) / size."""
        _check_nonempty(logits)
        z = logits.astype(np.float64)
        loss = np.mean(np.maximum(z, 0) - z * target + np.log1p(np.exp(-np.abs(z))))
        if grad is not None:
            self.sigmoid_forward(logits, grad)
            grad -= target
            grad /= logits.size
        return float(loss)

    def gather_rows(self, x, index, out):
        """out[i] = x[index[i]]: the rows of a shuffled mini-batch."""
        index = as_index(index)
        if index.size and not (0 <= index.min() and index.max() < len(x)):
            bad = index.min() if index.min() < 0 else index.max()
            raise IndexError(f"index {bad} is out of range for x with {len(x)} rows")
        np.take(x, index, axis=0, out=out, mode="clip")

    def count_correct(self, logits, labels):
        _check_labels(labels, logits.shape[0])  # a label out of range only counts as a miss
        return int(np.count_nonzero(logits.argmax(axis=1) == labels))

    def count_binary_correct(self, logits, target):
        """Elements whose prediction z > 0 matches target > 0.5."""
        if np.shape(target) != np.shape(logits):
            raise ValueError(f"target has shape {np.shape(target)}, expected the shape of "
                             f"logits, {np.shape(logits)}")
        return int(np.count_nonzero((logits > 0) == (target > 0.5)))

    # --- optimizer updates, in place over the flat parameter buffer ----------
    def sgd_update(self, w, g, lr):
        """w ← w - α ∇L(w)."""
        w -= lr * g

    def momentum_update(self, w, g, z, lr, beta, nesterov):
        """z ← β z - (1-β) g;  w ← w + α z.
        Nesterov evaluates the gradient at the look-ahead point; written for
        the look-ahead parameters themselves it needs no second forward pass:
        w ← w + α (β z - (1-β) g) with the new z. (Departs from the slide:
        the look-ahead is w + αβz, where the velocity carries w, not the
        slide's w + βz; ``w`` here is that look-ahead point. README, "where
        nnc departs from the slides".)"""
        z *= beta
        z -= (1 - beta) * g
        if nesterov:
            w += lr * (beta * z - (1 - beta) * g)
        else:
            w += lr * z

    def rmsprop_update(self, w, g, r, lr, rho, eps):
        """r ← ρ r + (1-ρ) g²;  w ← w - α g / sqrt(r + ε)."""
        r *= rho
        r += (1 - rho) * g * g
        w -= lr * g / np.sqrt(r + eps)

    def adam_update(self, w, g, m, v, lr, beta1, beta2, eps, t, weight_decay=0.0):
        """m ← β₁ m + (1-β₁) g;  v ← β₂ v + (1-β₂) g²;
        m̂ = m / (1-β₁ᵗ);  v̂ = v / (1-β₂ᵗ);  w ← w - α m̂ / (sqrt(v̂) + ε).
        (Departs from the slide, which divides by 1-β and puts ε inside the
        root: this is the paper's Algorithm 1, as PyTorch and Keras.)
        weight_decay λ > 0 first applies AdamW's decoupled decay w ← w - α λ w."""
        if t < 1:
            raise ValueError(f"t must be >= 1, got {t}")
        if weight_decay:
            w *= 1 - lr * weight_decay
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** t)
        # sqrt(v̂) = sqrt(v) / sqrt(1-β₂ᵗ): the root first, as v / (1-β₂ᵗ) can overflow float32
        sqrt_v_hat = np.sqrt(v) / np.sqrt(1 - beta2 ** t)
        w -= (lr * m_hat / (sqrt_v_hat + eps)).astype(w.dtype)

    def adagrad_update(self, w, g, r, lr, eps):
        """r ← r + g²;  w ← w - α g / (sqrt(r) + ε)."""
        r += g * g
        w -= lr * g / (np.sqrt(r) + eps)

    # --- whole-model gradient operations -------------------------------------
    def segment_sum_of_squares(self, g, offsets, out):
        """out[s] = Σ g² over parameter s; returns ‖g‖²."""
        for s in range(len(offsets) - 1):
            if not 0 <= offsets[s] <= offsets[s + 1] <= g.size:  # (slicing would clip them)
                raise ValueError(f"offsets must rise within [0, {g.size}], got "
                                 f"{offsets[s]}..{offsets[s + 1]} for segment {s}")
            segment = g[offsets[s]:offsets[s + 1]].astype(np.float64)
            out[s] = np.dot(segment, segment)
        return float(out.sum())

    def scale(self, x, factor):
        x *= factor

    def clip(self, x, limit):
        if not limit >= 0:  # NaN too
            raise ValueError(f"limit must be >= 0, got {limit}")
        np.clip(x, -limit, limit, out=x)

    def l2_penalty(self, w, g, lam):
        """λ R(w) with R(w) = ½ Σ w²: adds λ w to g, returns ½ λ Σ w²."""
        g += lam * w
        return 0.5 * lam * float(np.dot(w.astype(np.float64), w))

    # --- checks -------------------------------------------------------------
    def all_finite(self, x):
        return all_finite(x)


def _check_labels(labels, n, k=None):
    if np.shape(labels) != (n,):
        raise ValueError(f"labels has shape {np.shape(labels)}, expected ({n},)")
    if k is not None and n and not (0 <= np.min(labels) and np.max(labels) < k):
        raise ValueError(f"labels must lie in [0, {k}) for {k} classes")


def _check_nonempty(batch):
    """A mean over no elements is 0/0: refused, as the compiled kernels do."""
    if batch.size == 0:
        raise ValueError(f"the batch is empty (shape {batch.shape}): a mean loss needs at "
                         "least one element")
