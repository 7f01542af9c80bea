// The fused SHM scan for the CPU, forward and backward (plain C++, no torch headers).
//
// Dimension letters: B batch, T time, H memory size, K chunk length, L table rows.
// All arrays are contiguous, row-major; M[i, j] is row i (value index), column j (key index).
//
// Forward, for t = 1..T (M_0 given), one batch element at a time, M kept in cache:
//
//     C_t[i, j] = 2·sigmoid(2 θ_t[i] c_t[j])  (= 1 + tanh(θ_t[i] c_t[j]))      "vector" calibration
//     C_t       = table[l_t]                                                  "table" calibration
//     P_t       = M_{t-1} ⊙ C_t + v_t ⊗ k_t
//     M_t       = P_t, or clamp(P_t, −c, c) when a clamp c > 0 is given
//     r_t       = M_t q_t
//
// The states M_0, M_K, M_2K, ... are written to `boundaries` ([B, ceil(T/K), H, H]) when it is not
// null. The backward recomputes one chunk's states and calibrations from its boundary
// ([K+1, H, H] and [K, H, H] scratch per batch element), then runs the reverse-time recurrence
// (G_t = ∂L/∂M_t):
//
//     G_t  += ∂r_t ⊗ q_t ,          ∂q_t = M_tᵀ ∂r_t
//     ∂P_t  = G_t ⊙ [|P_t| ≤ c]     (the clamp's mask, recomputed; G_t itself without a clamp)
//     ∂v_t  = ∂P_t k_t ,            ∂k_t = ∂P_tᵀ v_t
//     ∂C_t  = ∂P_t ⊙ M_{t-1}
//     ∂Z_t  = ∂C_t ⊙ C_t (2 − C_t)  (vector: Z = θ ⊗ c, 1 − tanh²(Z) = C (2 − C), 2 − C = C·exp(−2Z))
//     ∂θ_t  = ∂Z_t c_t ,            ∂c_t = ∂Z_tᵀ θ_t
//     ∂table[l_t] += ∂C_t           (table)
//     G_{t-1} = ∂P_t ⊙ C_t ,        ∂M_0 = G_0
//
// exp is a polynomial with Cody–Waite range reduction written so that the compiler vectorises the
// inner loops (float: degree 6, ≈1 ulp; double: degree 13, ≈1 ulp on the clamped range).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace {

template <typename S>
struct Exp;

template <>
struct Exp<float> {
    static inline float eval(float x) {
        x = std::min(std::max(x, -87.0f), 88.0f);
        const float shift = 12582912.0f;  // 1.5·2^23: adding it rounds to an integer
        float n = x * 1.44269504088896341f + shift;
        n -= shift;
        const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
        float p = 1.0f / 720.0f;
        p = p * r + 1.0f / 120.0f;
        p = p * r + 1.0f / 24.0f;
        p = p * r + 1.0f / 6.0f;
        p = p * r + 0.5f;
        p = p * r + 1.0f;
        p = p * r + 1.0f;
        const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
        float scale;
        std::memcpy(&scale, &bits, sizeof(scale));
        return p * scale;
    }
};

template <>
struct Exp<double> {
    static inline double eval(double x) {
        x = std::min(std::max(x, -708.0), 708.0);
        const double shift = 6755399441055744.0;  // 1.5·2^52
        double n = x * 1.4426950408889634074 + shift;
        n -= shift;
        const double r = (x - n * 0.693147180369123816490) - n * 1.90821492927058770002e-10;
        double p = 1.0 / 6227020800.0;
        p = p * r + 1.0 / 479001600.0;
        p = p * r + 1.0 / 39916800.0;
        p = p * r + 1.0 / 3628800.0;
        p = p * r + 1.0 / 362880.0;
        p = p * r + 1.0 / 40320.0;
        p = p * r + 1.0 / 5040.0;
        p = p * r + 1.0 / 720.0;
        p = p * r + 1.0 / 120.0;
        p = p * r + 1.0 / 24.0;
        p = p * r + 1.0 / 6.0;
        p = p * r + 0.5;
        p = p * r + 1.0;
        p = p * r + 1.0;
        const int64_t bits = (static_cast<int64_t>(n) + 1023) << 52;
        double scale;
        std::memcpy(&scale, &bits, sizeof(scale));
        return p * scale;
    }
};

// C = 2·sigmoid(2θc) = 2 / (1 + exp(−2θc)) given a = −2θ.
template <typename S>
inline S sigmoid2(S a, S c) {
    return S(2) / (S(1) + Exp<S>::eval(a * c));
}

// The inputs of one scan; pointers to [B,T,H] unless noted. Exactly one calibration source is set:
// theta + calib (vector), or table [L,H,H] + indices [B,T] (table).
template <typename S>
struct Scan {
    const S* theta;
    const S* calib;
    const S* table;
    const int64_t* indices;
    const S* value;
    const S* key;
    const S* query;
    int64_t batch, steps, size, chunk, rows;  // B, T, H, K, L
    S clamp;                                  // > 0: clamp M to [−clamp, clamp]

    int64_t chunks() const { return (steps + chunk - 1) / chunk; }
    int64_t at(int64_t b, int64_t t) const { return (b * steps + t) * size; }
};

// One step's table calibration C_t = table[l_t] [H,H] copied into `out`.
template <typename S>
inline void table_calibration(const Scan<S>& s, int64_t b, int64_t t, S* __restrict out) {
    const int64_t H = s.size;
    std::memcpy(out, s.table + s.indices[b * s.steps + t] * H * H, sizeof(S) * H * H);
}

// P = M_prev ⊙ C + v ⊗ k (clamped) into `next` (which may be `prev`: element-wise, read before
// written); when `reads` is given, r = next · q.
template <typename S>
inline void advance(const Scan<S>& s, int64_t b, int64_t t, const S* prev, const S* __restrict cal, S* next,
                    S* __restrict reads) {
    const int64_t H = s.size;
    const S* __restrict v = s.value + s.at(b, t);
    const S* __restrict k = s.key + s.at(b, t);
    const S* __restrict q = s.query + s.at(b, t);
    const S lim = s.clamp;
    for (int64_t i = 0; i < H; ++i) {
        const S vi = v[i];
        const S* p = prev + i * H;
        const S* __restrict cr = cal + i * H;
        S* n = next + i * H;
        S acc = 0;
        if (lim > 0) {
#pragma omp simd reduction(+ : acc)
            for (int64_t j = 0; j < H; ++j) {
                const S m = std::min(std::max(p[j] * cr[j] + vi * k[j], -lim), lim);
                n[j] = m;
                acc += m * q[j];
            }
        } else {
#pragma omp simd reduction(+ : acc)
            for (int64_t j = 0; j < H; ++j) {
                const S m = p[j] * cr[j] + vi * k[j];
                n[j] = m;
                acc += m * q[j];
            }
        }
        if (reads) reads[i] = acc;
    }
}

// The forward's fast case: the vector calibration built in registers, M [H,H] updated in place,
// r = M q written to `reads`; th, c, v, k, q are one step's [H] vectors.
template <typename S>
inline void step_vector(int64_t H, const S* __restrict th, const S* __restrict c, const S* __restrict v,
                        const S* __restrict k, const S* __restrict q, S lim, S* __restrict memory,
                        S* __restrict reads) {
    for (int64_t i = 0; i < H; ++i) {
        const S a = S(-2) * th[i], vi = v[i];
        S* __restrict row = memory + i * H;
        S acc = 0;
        if (lim > 0) {
#pragma omp simd reduction(+ : acc)
            for (int64_t j = 0; j < H; ++j) {
                const S cal = sigmoid2(a, c[j]);
                const S m = std::min(std::max(row[j] * cal + vi * k[j], -lim), lim);
                row[j] = m;
                acc += m * q[j];
            }
        } else {
#pragma omp simd reduction(+ : acc)
            for (int64_t j = 0; j < H; ++j) {
                const S cal = sigmoid2(a, c[j]);
                const S m = row[j] * cal + vi * k[j];
                row[j] = m;
                acc += m * q[j];
            }
        }
        reads[i] = acc;
    }
}

template <typename S>
inline void advance_vector(const Scan<S>& s, int64_t b, int64_t t, S* __restrict memory, S* __restrict reads) {
    const int64_t at = s.at(b, t);
    step_vector(s.size, s.theta + at, s.calib + at, s.value + at, s.key + at, s.query + at, s.clamp, memory, reads);
}

// The backward's recompute of one vector-calibration step: next = P_t (clamped) from prev, and
// `code` [H,H] = C_t where C_t ≤ 1, else −(2 − C_t), with 2 − C_t = C_t·e (e = exp(−2θc)): both C
// and 2 − C are then exact to rounding where they are small (decode: C = code ≥ 0 ? code : 2 + code,
// 2 − C = code ≥ 0 ? 2 − code : −code), so 1 − tanh²(Z) = C (2 − C) stays accurate in float32 near
// C = 0 and C = 2, in one buffer.
template <typename S>
inline void recompute_vector(const Scan<S>& s, int64_t b, int64_t t, const S* __restrict prev, S* __restrict code,
                             S* __restrict next) {
    const int64_t H = s.size, at = s.at(b, t);
    const S *__restrict th = s.theta + at, *__restrict c = s.calib + at, *__restrict v = s.value + at,
            *__restrict k = s.key + at;
    const S lim = s.clamp;
    for (int64_t i = 0; i < H; ++i) {
        const S a = S(-2) * th[i], vi = v[i];
        const S* __restrict p = prev + i * H;
        S* __restrict cd = code + i * H;
        S* __restrict n = next + i * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) {
            const S e = Exp<S>::eval(a * c[j]);
            const S cal = S(2) / (S(1) + e);
            const S complement = cal * e;
            cd[j] = cal <= S(1) ? cal : -complement;
            n[j] = p[j] * cal + vi * k[j];
        }
        if (lim > 0)
            for (int64_t j = 0; j < H; ++j) n[j] = std::min(std::max(n[j], -lim), lim);
    }
}

template <typename S>
void forward_rows(const Scan<S>& s, const S* memory0, S* reads, S* memory, S* boundaries, int64_t b0, int64_t b1) {
    const int64_t H = s.size, HH = H * H;
    std::vector<S> cal(s.table ? HH : 0);
    for (int64_t b = b0; b < b1; ++b) {
        S* m = memory + b * HH;
        std::memcpy(m, memory0 + b * HH, sizeof(S) * HH);
        for (int64_t t = 0; t < s.steps; ++t) {
            if (boundaries && t % s.chunk == 0) std::memcpy(boundaries + (b * s.chunks() + t / s.chunk) * HH, m, sizeof(S) * HH);
            if (s.table) {
                table_calibration(s, b, t, cal.data());
                advance(s, b, t, m, cal.data(), m, reads + s.at(b, t));
            } else {
                advance_vector(s, b, t, m, reads + s.at(b, t));
            }
        }
    }
}

// Gradients; pointers shaped like their inputs. grad_table is [L,H,H] (table calibration only).
template <typename S>
struct Grads {
    S* theta;
    S* calib;
    S* table;
    S* value;
    S* key;
    S* query;
    S* memory0;
};

template <typename S>
void backward_rows(const Scan<S>& s, const S* boundaries, const S* grad_reads, const S* grad_final, Grads<S> g,
                   int64_t b0, int64_t b1) {
    const int64_t H = s.size, HH = H * H, K = s.chunk;
    std::vector<S> states((K + 1) * HH), cals(K * HH), G(HH);  // cals: C_t (table) or its code (vector)
    const S lim = s.clamp;
    for (int64_t b = b0; b < b1; ++b) {
        if (grad_final) std::memcpy(G.data(), grad_final + b * HH, sizeof(S) * HH);
        else std::fill(G.begin(), G.end(), S(0));
        for (int64_t index = s.chunks() - 1; index >= 0; --index) {
            const int64_t start = index * K, stop = std::min(start + K, s.steps);
            std::memcpy(states.data(), boundaries + (b * s.chunks() + index) * HH, sizeof(S) * HH);
            for (int64_t t = start; t < stop; ++t) {
                const int64_t n = t - start;
                S* cal = cals.data() + n * HH;
                if (s.table) {
                    table_calibration(s, b, t, cal);
                    advance<S>(s, b, t, states.data() + n * HH, cal, states.data() + (n + 1) * HH, nullptr);
                } else {
                    recompute_vector(s, b, t, states.data() + n * HH, cal, states.data() + (n + 1) * HH);
                }
            }
            for (int64_t t = stop - 1; t >= start; --t) {
                const int64_t n = t - start, at = s.at(b, t);
                const S* __restrict now = states.data() + (n + 1) * HH;
                const S* __restrict prev = states.data() + n * HH;
                const S* __restrict cal = cals.data() + n * HH;
                const S* __restrict gr = grad_reads + at;
                const S* __restrict q = s.query + at;
                const S* __restrict v = s.value + at;
                const S* __restrict k = s.key + at;
                S* __restrict gq = g.query + at;
                S* __restrict gk = g.key + at;
                S* __restrict gv = g.value + at;
                S* __restrict Gm = G.data();
                const bool vector = s.table == nullptr;
                const S* __restrict th = vector ? s.theta + at : nullptr;
                const S* __restrict c = vector ? s.calib + at : nullptr;
                S* __restrict gth = vector ? g.theta + at : nullptr;
                S* __restrict gc = vector ? g.calib + at : nullptr;
                S* __restrict gtab = vector ? nullptr : g.table + s.indices[b * s.steps + t] * HH;
                for (int64_t j = 0; j < H; ++j) gq[j] = gk[j] = S(0);
                if (vector)
                    for (int64_t j = 0; j < H; ++j) gc[j] = S(0);
                for (int64_t i = 0; i < H; ++i) {
                    const S gri = gr[i], vi = v[i];
                    const S* __restrict mt = now + i * H;
                    const S* __restrict mp = prev + i * H;
                    const S* __restrict cr = cal + i * H;
                    S* __restrict gm = Gm + i * H;
                    S accv = 0, acct = 0;
                    if (vector) {
                        const S thi = th[i];
#pragma omp simd reduction(+ : accv, acct)
                        for (int64_t j = 0; j < H; ++j) {
                            const S code = cr[j];
                            const S cj = code >= S(0) ? code : S(2) + code;  // C_t
                            const S dj = code >= S(0) ? S(2) - code : -code;  // 2 − C_t
                            S gp = gm[j] + gri * q[j];  // G_t
                            gq[j] += gri * mt[j];
                            if (lim > 0) {
                                const S pre = mp[j] * cj + vi * k[j];
                                gp = (pre >= -lim && pre <= lim) ? gp : S(0);  // ∂P_t
                            }
                            accv += gp * k[j];
                            gk[j] += vi * gp;
                            const S dz = gp * mp[j] * cj * dj;  // ∂Z = ∂P ⊙ M_{t-1} ⊙ C (2 − C)
                            acct += dz * c[j];
                            gc[j] += thi * dz;
                            gm[j] = gp * cj;  // G_{t-1}
                        }
                        gth[i] = acct;
                    } else {
                        S* __restrict gt = gtab + i * H;
#pragma omp simd reduction(+ : accv)
                        for (int64_t j = 0; j < H; ++j) {
                            S gp = gm[j] + gri * q[j];
                            gq[j] += gri * mt[j];
                            if (lim > 0) {
                                const S pre = mp[j] * cr[j] + vi * k[j];
                                gp = (pre >= -lim && pre <= lim) ? gp : S(0);
                            }
                            accv += gp * k[j];
                            gk[j] += vi * gp;
                            gt[j] += gp * mp[j];
                            gm[j] = gp * cr[j];
                        }
                    }
                    gv[i] = accv;
                }
            }
        }
        std::memcpy(g.memory0 + b * HH, G.data(), sizeof(S) * HH);
    }
}

// Split the batch over `threads` workers (each owns whole batch elements); `body(b0, b1, worker)`.
template <typename F>
void over_batch(int64_t batch, int64_t threads, F body) {
    threads = std::max<int64_t>(1, std::min(threads, batch));
    if (threads == 1) return body(0, batch, 0);
    std::vector<std::thread> pool;
    const int64_t per = (batch + threads - 1) / threads;
    for (int64_t w = 0; w < threads; ++w) {
        const int64_t b0 = w * per, b1 = std::min(batch, b0 + per);
        if (b0 < b1) pool.emplace_back(body, b0, b1, w);
    }
    for (auto& worker : pool) worker.join();
}

template <typename S>
Scan<S> make_scan(const S* theta, const S* calib, const S* table, const int64_t* indices, const S* value, const S* key,
                  const S* query, int64_t batch, int64_t steps, int64_t size, int64_t chunk, int64_t rows, double clamp) {
    return Scan<S>{theta, calib, table, indices, value, key, query, batch, steps, size, std::max<int64_t>(chunk, 1),
                   rows, static_cast<S>(clamp)};
}

template <typename S>
void forward(const S* theta, const S* calib, const S* table, const int64_t* indices, const S* value, const S* key,
             const S* query, const S* memory0, S* reads, S* memory, S* boundaries, int64_t batch, int64_t steps,
             int64_t size, int64_t chunk, int64_t rows, double clamp, int64_t threads) {
    const Scan<S> s = make_scan(theta, calib, table, indices, value, key, query, batch, steps, size, chunk, rows, clamp);
    over_batch(batch, threads, [&](int64_t b0, int64_t b1, int64_t) { forward_rows(s, memory0, reads, memory, boundaries, b0, b1); });
}

template <typename S>
void backward(const S* theta, const S* calib, const S* table, const int64_t* indices, const S* value, const S* key,
              const S* query, const S* boundaries, const S* grad_reads, const S* grad_final, S* grad_theta,
              S* grad_calib, S* grad_table, S* grad_value, S* grad_key, S* grad_query, S* grad_memory0, int64_t batch,
              int64_t steps, int64_t size, int64_t chunk, int64_t rows, double clamp, int64_t threads) {
    const Scan<S> s = make_scan(theta, calib, table, indices, value, key, query, batch, steps, size, chunk, rows, clamp);
    threads = std::max<int64_t>(1, std::min(threads, batch));
    // grad_table is shared by all batch elements: one private copy per extra worker, summed at the end.
    const int64_t table_size = table ? rows * size * size : 0;
    std::vector<S> private_tables(table_size * (threads - 1), S(0));
    over_batch(batch, threads, [&](int64_t b0, int64_t b1, int64_t worker) {
        S* gtab = worker == 0 ? grad_table : private_tables.data() + (worker - 1) * table_size;
        backward_rows(s, boundaries, grad_reads, grad_final,
                      Grads<S>{grad_theta, grad_calib, gtab, grad_value, grad_key, grad_query, grad_memory0}, b0, b1);
    });
    for (int64_t w = 0; w + 1 < threads && table_size; ++w)
        for (int64_t n = 0; n < table_size; ++n) grad_table[n] += private_tables[w * table_size + n];
}

// Acting (no gradient): the SHM cell after its stacked input projection, for every step.
// stacked [B,T,W] rows hold [k̃ (H) | q̃ (H) | ṽ (H) | η̃ (1) | c (H) | s (H) | θ (H, neural θ only)]:
//     k = relu(k̃) / (1e-5 + Σ relu(k̃)),  q likewise,  v = sigmoid(η̃) ṽ
//     θ_t = thetas[l_t] (table), the row's own θ (neural θ), or 0 (no calibration: C = 1)
//     M_t = M_{t-1} ⊙ C_t + v ⊗ k (clamped),  y_t = M_t q + s        y [B,T,H], M_T [B,H,H]
template <typename S>
void act(const S* stacked, int64_t width, const S* thetas, const int64_t* indices, int64_t theta_offset,
         const S* memory0, S* memory, S* y, int64_t batch, int64_t steps, int64_t size, double clamp) {
    const int64_t H = size, HH = H * H;
    std::vector<S> k(H), q(H), v(H), zero(H, S(0));
    for (int64_t b = 0; b < batch; ++b) {
        S* m = memory + b * HH;
        std::memcpy(m, memory0 + b * HH, sizeof(S) * HH);
        for (int64_t t = 0; t < steps; ++t) {
            const S* row = stacked + (b * steps + t) * width;
            S sk = 0, sq = 0;
            for (int64_t j = 0; j < H; ++j) {
                k[j] = std::max(row[j], S(0));
                q[j] = std::max(row[H + j], S(0));
                sk += k[j];
                sq += q[j];
            }
            const S gate = S(1) / (S(1) + std::exp(-row[3 * H]));
            for (int64_t j = 0; j < H; ++j) {
                k[j] = k[j] / (S(1e-5) + sk);
                q[j] = q[j] / (S(1e-5) + sq);
                v[j] = gate * row[2 * H + j];
            }
            const S* th = indices ? thetas + indices[b * steps + t] * H : theta_offset ? row + theta_offset : zero.data();
            S* out = y + (b * steps + t) * H;
            step_vector(H, th, row + 3 * H + 1, v.data(), k.data(), q.data(), static_cast<S>(clamp), m, out);
            const S* shortcut = row + 4 * H + 1;
            for (int64_t i = 0; i < H; ++i) out[i] += shortcut[i];
        }
    }
}

}  // namespace

#define SHM_EXPORT(S, suffix)                                                                                      \
    extern "C" void shm_forward_##suffix(const S* theta, const S* calib, const S* table, const int64_t* indices,    \
                                         const S* value, const S* key, const S* query, const S* memory0, S* reads, \
                                         S* memory, S* boundaries, int64_t batch, int64_t steps, int64_t size,      \
                                         int64_t chunk, int64_t rows, double clamp, int64_t threads) {              \
        forward<S>(theta, calib, table, indices, value, key, query, memory0, reads, memory, boundaries, batch,      \
                   steps, size, chunk, rows, clamp, threads);                                                       \
    }                                                                                                               \
    extern "C" void shm_backward_##suffix(                                                                          \
        const S* theta, const S* calib, const S* table, const int64_t* indices, const S* value, const S* key,       \
        const S* query, const S* boundaries, const S* grad_reads, const S* grad_final, S* grad_theta,               \
        S* grad_calib, S* grad_table, S* grad_value, S* grad_key, S* grad_query, S* grad_memory0, int64_t batch,    \
        int64_t steps, int64_t size, int64_t chunk, int64_t rows, double clamp, int64_t threads) {                  \
        backward<S>(theta, calib, table, indices, value, key, query, boundaries, grad_reads, grad_final,            \
                    grad_theta, grad_calib, grad_table, grad_value, grad_key, grad_query, grad_memory0, batch,      \
                    steps, size, chunk, rows, clamp, threads);                                                      \
    }

SHM_EXPORT(float, f32)
SHM_EXPORT(double, f64)

#define SHM_EXPORT_ACT(S, suffix)                                                                                \
    extern "C" void shm_act_##suffix(const S* stacked, int64_t width, const S* thetas, const int64_t* indices,     \
                                     int64_t theta_offset, const S* memory0, S* memory, S* y, int64_t batch,        \
                                     int64_t steps, int64_t size, double clamp) {                                   \
        act<S>(stacked, width, thetas, indices, theta_offset, memory0, memory, y, batch, steps, size, clamp);      \
    }

SHM_EXPORT_ACT(float, f32)
SHM_EXPORT_ACT(double, f64)

extern "C" int shm_kernel_abi_version() { return 2; }
