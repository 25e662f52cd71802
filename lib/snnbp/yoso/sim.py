"""Event-driven ReL-PSP inference on the accelerator, with operation counts and a cycle model.

Functional model (ALGORITHMS.md 2.2, 3.3, 3.6). Time is quantised to steps ``n = 0, 1, ...`` of
``dt`` ms (``t = n * dt``). An input spike at ``t_i`` is processed at step ``k_i = ceil(t_i / dt)``.
Each neuron keeps a slope ``S_j`` and a potential ``V_j`` (in units of one weight LSB times one
step). At every step ``n``, layer by layer:

1. sweep: every *active* neuron (touched by an input at a step ``< n``, not yet fired) does
   ``V_j += S_j`` and compares ``V_j >= theta_j``; the first time it holds the neuron fires at ``n``
   (once: a fired neuron is never updated again);
2. events: each input spike of step ``n`` (LOAD: FIFO pop, weight row + state reads; COMPUTE:
   ``S_j += w_ij`` for the local neurons that have not fired; STORE: state writes), and the spikes
   fired in step 1 are routed by XY to the PEs of the next layer, which process them as events of
   the same step ``n``.

Hence ``V_j[n] = sum_i w_ij * max(0, n - k_i)``: the exact ReL-PSP potential of the *quantised*
input times, sampled on the grid. Because all its kinks lie on the grid, ``V_j`` is linear between
grid points, so the simulated spike step is exactly ``ceil(t_hat_j / dt)`` where ``t_hat_j`` is the
exact first crossing for the quantised inputs. The simulator uses this: it solves each linear
segment in closed form (no loop over steps) and is bit-exact with the step-by-step recursion when
weights are fixed-point integers (``to_hardware(..., quantise=True)``).

Fixed-point arithmetic (``quantise=True``; widths and rounding ``R`` from :class:`YosoArch`).
Weights ``w_q = clamp(R(w / s), +-q)`` with ``q = 2^(weight_bits-1) - 1`` and the per-layer scale
``s = max|w| / q``. The slope is an integer in weight LSBs, saturated to
``+-(2^(slope_bits-1) - 1)`` after each step's events (the order of events within a step is not
modelled). The potential register counts units of ``2^p`` (weight LSB x step), ``p`` the fewest
dropped low bits that let the threshold ``theta / (s dt 2^p)`` (rounded up) fit in
``potential_bits``; each step adds ``R(S / 2^p)`` and saturates at ``+-(2^(potential_bits-1) - 1)``.
With ``p = 0`` and no saturation this is the integer recursion above. Against the same grid with
float64 weights (``quantise=False``), the potential in model units differs by at most
``B(n) = e_w dt sum_i max(0, n - k_i) + e_r s dt max(0, n - k_min)`` with ``e_w = s / 2`` and
``e_r = 2^p / 2`` for ``nearest`` (``s`` and ``2^p`` for ``floor``), and the threshold is raised by
less than ``s dt 2^p``: a neuron fires on the fixed-point grid only where the float potential is
within that bound of the threshold (tested, without saturation).

Quantisation error bound (documented, tested). Let ``eps^0 = dt`` (input rounding, ``0 <= k dt -
t < dt``). For a neuron whose exact causal set ``C_j`` (inputs before ``t_j``) does not change under
the perturbation, ``t_sim - t_exact`` lies in ``[-E, E + dt)`` with
``E = eps^{l-1} * sum_{C_j} |w_ij| / sum_{C_j} w_ij`` (ALGORITHMS.md 2.3: ``dt_j/dt_i =
w_ij / sum_C w``) and propagates as ``eps^l_j = dt + E``. With non-negative weights this holds
unconditionally and gives ``0 <= t_sim - t_exact < (l + 1) * dt`` after ``l`` layers. Fixed-point
weights add their own (separate) rounding.

Operation counts follow the spirit of sinabs's synop counter (exact per-neuron fan-out), per
sample, per layer and per PE: see :class:`Counts`. The cycle model of the LOAD -> COMPUTE -> STORE
pipeline is in :func:`layer_cycles`.

Shapes: spike times ``[B, N]`` in ms with ``inf`` for "no spike"; rasters ``[T, B, N]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from snnbp.progress import bar as progress_bar
from snnbp.yoso.arch import YosoArch
from snnbp.yoso.counts import COUNTERS as COUNTERS
from snnbp.yoso.counts import (
    Counts,
    Deliveries,
    account,
    concat_counts,
    dense_work,
    sparse_deliveries,
    sparse_work,
    ttfs_activity,
)
from snnbp.yoso.counts import rate_coded_counts as rate_coded_counts
from snnbp.yoso.mapping import Mapping

INF = float("inf")


@dataclass(frozen=True)
class HwNetwork:
    """A trained fully connected ReL-PSP network in the accelerator's number format.

    Attributes:
        weights: per layer ``[N_out, N_in]`` float64; integers (weight LSBs) when ``quantised``.
        thresholds: per layer, in units of (weight LSB x time step); an integer when quantised
            (potentials are integers, so ``V >= theta`` is unchanged by rounding ``theta`` up).
        scales: per layer, the model value of one weight LSB (1.0 when not quantised).
        quantised: weights rounded to ``arch.weight_bits`` signed fixed point.
        shifts: per layer, low bits ``p`` the potential register drops (thresholds are then in
            units of ``2^p``); empty when not quantised.
        rounding: the rounding mode of the fixed-point arithmetic.
        slope_limit: largest slope magnitude (``inf`` when not quantised).
        potential_limit: largest potential magnitude (``inf`` when not quantised).
    """

    weights: tuple[torch.Tensor, ...]
    thresholds: tuple[float, ...]
    scales: tuple[float, ...]
    quantised: bool
    shifts: tuple[int, ...] = ()
    rounding: str = "nearest"
    slope_limit: float = INF
    potential_limit: float = INF

    @property
    def layer_sizes(self) -> list[int]:
        """``[N_0, N_1, ..., N_L]``."""
        return [self.weights[0].shape[1]] + [w.shape[0] for w in self.weights]


def checked_thresholds(
    mats: Sequence[torch.Tensor], thetas: Sequence[float] | float, outputs: Sequence[int] | None = None
) -> list[float]:
    """One threshold per layer, after checking that the weight matrices chain.

    ``outputs`` gives each layer's spiking outputs when they are not its neurons (first-spike
    pooling: :mod:`snnbp.yoso.conv`); by default layer ``l`` feeds ``mats[l].shape[0]`` inputs on.

    Raises:
        ValueError: a threshold count that does not match, a matrix that is not ``[N_out, N_in]``,
            shapes that do not chain, or a threshold <= 0 (naming the layer, 1-based).
    """
    values = [float(thetas)] * len(mats) if np.isscalar(thetas) else [float(t) for t in thetas]
    if len(values) != len(mats):
        raise ValueError(f"{len(values)} thresholds for {len(mats)} weight matrices")
    for l, (w, theta) in enumerate(zip(mats, values), start=1):
        if w.ndim != 2:
            raise ValueError(f"layer {l}: weight must be [N_out, N_in], got shape {tuple(w.shape)}")
        fed = mats[l - 2].shape[0] if outputs is None or l == 1 else outputs[l - 2]
        if l > 1 and w.shape[1] != fed:
            what = "neurons" if outputs is None else "outputs"
            raise ValueError(f"layer {l}: {w.shape[1]} inputs but layer {l - 1} has {fed} {what}")
        if not theta > 0:
            raise ValueError(f"layer {l}: threshold must be > 0, got {theta}")
    return values


def to_hardware(
    weights: Sequence[torch.Tensor | np.ndarray],
    thetas: Sequence[float] | float,
    arch: YosoArch,
    *,
    quantise: bool = True,
    device: str | torch.device = "cpu",
    outputs: Sequence[int] | None = None,
) -> HwNetwork:
    """Convert model weights and thresholds to the accelerator's units.

    ``V_model(n dt) = scale * dt * V_hw[n]``, so ``theta_hw = theta / (scale * dt)``. With
    ``quantise`` the per-layer scale maps ``max |w|`` to ``2^(weight_bits-1) - 1`` and
    ``w_hw = R(w / scale)`` (the spike times are invariant to scaling ``w`` and ``theta``
    together, so only the rounding changes them); the potential drops ``p`` low bits when
    ``theta_hw`` exceeds the potential register (module docstring).

    Args:
        weights: per layer ``[N_out, N_in]``.
        thetas: one threshold per layer (or one for all), > 0.
        arch: gives ``dt_ms`` and ``weight_bits``.
        quantise: round to fixed point (else keep float64 weights, scale 1).
        device: where the weights live.
        outputs: spiking outputs per layer where pooling makes them fewer than its neurons
            (:func:`checked_thresholds`).

    Raises:
        ValueError: shapes that do not chain, or a threshold <= 0.
    """
    mats = [torch.as_tensor(w, dtype=torch.float64).to(device) for w in weights]
    thetas_list = checked_thresholds(mats, thetas, outputs)
    if not quantise:
        return HwNetwork(tuple(mats), tuple(theta / arch.dt_ms for theta in thetas_list), (1.0,) * len(mats), False)
    q_max = 2 ** (arch.weight_bits - 1) - 1
    v_max = 2 ** (arch.potential_bits - 1) - 1
    out_w, out_t, out_s, out_p = [], [], [], []
    for w, theta in zip(mats, thetas_list):
        peak = float(w.abs().max())
        scale = peak / q_max if peak > 0 else 1.0
        out_w.append(round_fixed(w / scale, arch.rounding).clamp(-q_max, q_max))
        full = theta / (scale * arch.dt_ms)
        shift = max(0, math.ceil(math.log2(full / v_max))) if full > v_max else 0
        out_t.append(float(math.ceil(full / 2**shift - 1e-9)))
        out_s.append(scale)
        out_p.append(shift)
    return HwNetwork(
        tuple(out_w),
        tuple(out_t),
        tuple(out_s),
        True,
        tuple(out_p),
        arch.rounding,
        float(2 ** (arch.slope_bits - 1) - 1),
        float(v_max),
    )


def round_fixed(x: torch.Tensor, rounding: str) -> torch.Tensor:
    """Round to integers: ``"nearest"`` (ties to even) or ``"floor"`` (truncation toward -inf,
    what an arithmetic right shift does). Shape: any; same dtype."""
    if rounding == "nearest":
        return torch.round(x)
    if rounding == "floor":
        return torch.floor(x)
    raise ValueError(f"rounding must be 'nearest' or 'floor', got {rounding!r}")


def overflow_risk(net: HwNetwork, arch: YosoArch) -> tuple[torch.Tensor, ...]:
    """Neurons whose state could leave its signed fixed-point range for *some* input.

    ``|S_j| <= max(sum_{w>0} w_ij, sum_{w<0} |w_ij|)`` and ``|V_j| <= that * (n_steps - 1)`` (or the
    threshold itself), compared with ``2^(slope_bits-1) - 1`` and ``2^(potential_bits-1) - 1``.
    A static, conservative check: no flagged neuron means no input can saturate a register
    (the potential in units of ``2^p`` where it drops ``p`` low bits).

    Shape:
        - Output: per layer ``[N_l]`` bool.
    """
    out = []
    for l, (w, theta) in enumerate(zip(net.weights, net.thresholds)):
        slope = torch.maximum(w.clamp(min=0).sum(1), (-w).clamp(min=0).sum(1))
        shift = net.shifts[l] if net.shifts else 0
        potential = torch.maximum(slope / 2**shift * (arch.n_steps - 1), torch.full_like(slope, theta))
        out.append((slope > 2 ** (arch.slope_bits - 1) - 1) | (potential > 2 ** (arch.potential_bits - 1) - 1))
    return tuple(out)


def time_to_step(t_ms: torch.Tensor, arch: YosoArch) -> torch.Tensor:
    """Quantise spike times to steps: ``k = ceil(t / dt)`` (with a 1e-9 tolerance for ``t / dt``
    that is an integer up to float rounding); times beyond the window become ``inf``.

    Shape:
        - t_ms: ``[B, N]`` in ms, ``inf`` for no spike; must be >= 0.
        - Output: ``[B, N]`` float64 step indices, ``inf`` for no spike.
    """
    t = t_ms.to(torch.float64)
    if bool((t < 0).any()) or bool(torch.isnan(t).any()):
        raise ValueError("spike times must be >= 0 ms (inf for no spike), got a negative or NaN time")
    k = torch.ceil(t / arch.dt_ms - 1e-9).clamp(min=0)
    return torch.where(k <= arch.n_steps - 1, k, torch.full_like(k, INF))


@dataclass(frozen=True)
class GroupTable:
    """A weight matrix as :func:`first_crossing_steps` sums it, prepared once per network.

    Attributes:
        table: ``[N_in, N_out]`` the transposed weights, float32 when integer weights keep every
            row sum exact in float32 (below 2^24), else float64.
        reach: the largest row sum of ``|w|`` (the static bound on a slope).
    """

    table: torch.Tensor
    reach: float


def group_table(weight: torch.Tensor) -> GroupTable:
    """:class:`GroupTable` of ``weight`` (``[N_out, N_in]`` in hardware units)."""
    reach = float(weight.abs().sum(1).max()) if weight.numel() else 0.0
    exact32 = bool((weight == torch.round(weight)).all()) and reach < 2.0**24
    return GroupTable(weight.t().to(torch.float32 if exact32 else torch.float64).contiguous(), reach)


def first_crossing_steps(
    k_in: torch.Tensor,
    weight: torch.Tensor,
    theta: float,
    last_step: int,
    *,
    shift: int = 0,
    rounding: str = "nearest",
    slope_limit: float = INF,
    potential_limit: float = INF,
    prepared: GroupTable | None = None,
) -> torch.Tensor:
    """Spike step of every neuron: the first ``n <= last_step`` with
    ``V[n] = sum_i w_ij * max(0, n - k_i) >= theta`` (``inf`` if none).

    Inputs are grouped by step per sample (``u_0 < u_1 < ...``, padded with ``last_step``); on
    segment ``(u_g, u_{g+1}]`` the slope is ``S_g = sum_{k_i <= u_g} w_ij`` and
    ``V(u_{g+1}) = V(u_g) + S_g (u_{g+1} - u_g)``. In the first segment whose end reaches theta,
    ``n = u_{g+1} - floor((V(u_{g+1}) - theta) / S_g)``. Group sums use ``embedding_bag``; the scan
    over segments is vectorised over samples and neurons and stops once every neuron has fired.

    Fixed point (module docstring): ``S_g`` saturates at ``+-slope_limit``, each step adds
    ``R(S_g / 2^shift)`` and ``V`` saturates at ``+-potential_limit`` (``theta <= potential_limit``,
    so the upper limit never hides a crossing and the lower one is a floor on a falling segment:
    the segments stay linear and closed-form).

    Args:
        k_in: input spike steps, ``inf`` for none.
        weight: ``[N_out, N_in]`` in hardware units.
        theta: threshold in hardware units (> 0).
        last_step: the window's last step.
        shift: low bits the potential drops (0: none).
        rounding: ``R`` of the shifted slope (:func:`round_fixed`).
        slope_limit, potential_limit: saturation levels (``inf``: none).
        prepared: ``group_table(weight)``, when the caller reuses it over many batches.

    Shape:
        - k_in: ``[B, N_in]`` float64.
        - Output: ``[B, N_out]`` float64 spike steps, ``inf`` for none.
    """
    batch, n_out = k_in.shape[0], weight.shape[0]
    device = k_in.device
    n_fire = torch.full((batch, n_out), INF, dtype=torch.float64, device=device)
    ks, order = torch.sort(k_in, dim=1)
    valid = torch.isfinite(ks)
    n_valid = int(valid.sum(1).max()) if batch else 0
    if n_valid == 0:
        return n_fire
    ks, order, valid = ks[:, :n_valid], order[:, :n_valid], valid[:, :n_valid]
    new = torch.ones_like(valid)
    new[:, 1:] = ks[:, 1:] != ks[:, :-1]
    new &= valid
    group = (torch.cumsum(new, 1) - 1).clamp(min=0)
    n_groups = int(new.sum(1).max())
    sizes = torch.zeros(batch, n_groups, dtype=torch.int64, device=device).scatter_add_(1, group, valid.long())
    u = torch.full((batch, n_groups), INF, dtype=torch.float64, device=device)
    u = u.scatter_reduce(1, group, torch.where(valid, ks, INF), "amin", include_self=True)
    u = torch.where(torch.isfinite(u), u, float(last_step))
    u_next = torch.cat([u[:, 1:], torch.full((batch, 1), float(last_step), dtype=torch.float64, device=device)], 1)
    du = u_next - u
    offsets = torch.cumsum(sizes.reshape(-1), 0) - sizes.reshape(-1)
    prepared = prepared if prepared is not None else group_table(weight)
    jumps = torch.nn.functional.embedding_bag(order[valid], prepared.table, offsets, mode="sum")
    jumps = jumps.view(batch, n_groups, n_out)
    slope = torch.zeros(batch, n_out, dtype=torch.float64, device=device)
    potential = torch.zeros_like(slope)
    # Saturation can only happen where the static bound (overflow_risk) allows it.
    reach = prepared.reach
    clamp_slope = reach > slope_limit
    clamp_potential = reach / 2**shift * last_step > potential_limit
    waiting = batch * n_out
    for g in range(n_groups):
        slope.add_(jumps[:, g])
        if clamp_slope:
            slope.clamp_(-slope_limit, slope_limit)
        rate = slope if shift == 0 else round_fixed(slope / 2**shift, rounding)
        potential.addcmul_(rate, du[:, g : g + 1])  # V(u_{g+1})
        if clamp_potential:
            potential = torch.where(potential == -INF, potential, potential.clamp(min=-potential_limit))
        rows, cols = (potential >= theta).nonzero(as_tuple=True)
        if rows.numel():
            s, v = rate[rows, cols], potential[rows, cols]
            n_fire[rows, cols] = u_next[rows, g] - torch.floor((v - theta) / s)
            potential[rows, cols] = -INF  # fired: stays below theta whatever is added later
            waiting -= rows.numel()
            if waiting == 0:
                break
    return n_fire


@dataclass(frozen=True)
class SimResult:
    """Output of :func:`simulate`.

    Attributes:
        spike_times: per layer ``l = 1..L``, ``[B, N_l]`` spike times in ms (multiples of ``dt``;
            ``inf``: no spike within the window). The functional result over the whole window,
            also when the hardware stops early.
        prediction: ``[B]`` the output neuron that fires first (lowest index on ties; ``-1`` if
            none fires).
        counts: operation counts and cycles (up to each sample's stop step).
        clock_mhz: to convert cycles to time.
    """

    spike_times: tuple[torch.Tensor, ...]
    prediction: torch.Tensor
    counts: Counts
    clock_mhz: float

    @property
    def latency_ms(self) -> torch.Tensor:
        """``[B]`` inference latency: cycles / clock."""
        return self.counts.cycles / (self.clock_mhz * 1e3)


def first_spike_class(t_out: torch.Tensor) -> torch.Tensor:
    """Earliest output spike's index (lowest on ties), ``-1`` if no output spike. Shape: ``[B]``."""
    pred = torch.argmin(t_out, dim=1)
    return torch.where(torch.isfinite(t_out).any(1), pred, -1)


def pooled_steps(n_fire: torch.Tensor, emitter: torch.Tensor, n_emitters: int) -> torch.Tensor:
    """First-spike pooling on the step grid: each pooled neuron fires at the earliest step of its
    window's neurons. Shape: ``n_fire`` ``[B, N]``, ``emitter`` ``[N]``; output ``[B, n_emitters]``."""
    out = torch.full((n_fire.shape[0], n_emitters), INF, dtype=n_fire.dtype, device=n_fire.device)
    return out.scatter_reduce(1, emitter.view(1, -1).expand_as(n_fire), n_fire, "amin")


def _simulate_chunk(
    net: HwNetwork,
    mapping: Mapping,
    t_in: torch.Tensor,
    tables: Sequence[GroupTable],
    deliveries: dict[int, Deliveries],
) -> SimResult:
    arch = mapping.arch
    last = arch.n_steps - 1
    steps = [time_to_step(t_in, arch)]
    fires = []
    for l, (w, theta) in enumerate(zip(net.weights, net.thresholds)):
        fires.append(
            first_crossing_steps(
                steps[-1],
                w,
                theta,
                last,
                shift=net.shifts[l] if net.shifts else 0,
                rounding=net.rounding,
                slope_limit=net.slope_limit,
                potential_limit=net.potential_limit,
                prepared=tables[l],
            )
        )
        wiring = mapping.layers[l].wiring
        if wiring is None:
            steps.append(fires[-1])
        else:
            emitter = torch.as_tensor(wiring.emitter, device=t_in.device)
            steps.append(pooled_steps(fires[-1], emitter, wiring.n_emitters))
    out_first = steps[-1].amin(1)
    if arch.stop_at_first_output:
        stop = torch.where(torch.isfinite(out_first), out_first, float(last))
    else:
        stop = torch.full_like(out_first, float(last))
    n_bins = int(stop.max()) + 1 if stop.numel() else 1
    works, prev = [], None
    for l, lmap in enumerate(mapping.layers):
        if lmap.wiring is None:
            act = ttfs_activity(steps[l], fires[l], stop, lmap, prev, n_bins)
            works.append(dense_work(act, lmap, arch, mapping.hops_into(l + 1)))
        else:
            works.append(sparse_work(steps[l], fires[l], steps[l + 1], stop, lmap, arch, deliveries[l], n_bins))
        prev = works[-1].emitted.sum(-1)
    counts = account(works, mapping, stop, sweep_adds=1.0)
    times = tuple(s * arch.dt_ms for s in steps[1:])
    return SimResult(times, first_spike_class(times[-1]), counts, arch.clock_mhz)


def simulate(
    net: HwNetwork, mapping: Mapping, t_in: torch.Tensor, *, chunk_size: int = 64, progress: bool = True
) -> SimResult:
    """Run inference of a batch of latency-coded inputs on the accelerator.

    Args:
        net: the network in hardware units (:func:`to_hardware`).
        mapping: its placement (:func:`snnbp.yoso.mapping.map_network`), whose ``arch`` is used.
        t_in: input spike times in ms, ``inf`` for silent inputs.
        chunk_size: samples processed together (bounds memory: ``chunk x groups x N`` float64).
        progress: a bar over the chunks when there are several (:mod:`snnbp.progress`).

    Shape:
        - t_in: ``[B, N_0]``.
        - Output: see :class:`SimResult`.
    """
    sizes = [layer.n_in for layer in mapping.layers] + [mapping.layers[-1].n_out]
    shapes = [(layer.n_out, layer.n_in) for layer in mapping.layers]
    if shapes != [tuple(w.shape) for w in net.weights]:
        raise ValueError(f"mapping is for layers {sizes} but the network has {net.layer_sizes}")
    if t_in.ndim != 2 or t_in.shape[1] != sizes[0]:
        raise ValueError(f"t_in must be [B, {sizes[0]}], got {tuple(t_in.shape)}")
    t_in = t_in.to(net.weights[0].device)
    deliveries = {
        l: sparse_deliveries(mapping, l + 1, t_in.device)
        for l, layer in enumerate(mapping.layers)
        if layer.wiring is not None
    }
    tables = [group_table(w) for w in net.weights]
    starts = range(0, t_in.shape[0], chunk_size)
    parts = [
        _simulate_chunk(net, mapping, t_in[i : i + chunk_size], tables, deliveries)
        for i in progress_bar(starts, progress=progress and len(starts) > 1, desc="accelerator", leave=False)
    ]
    return SimResult(
        tuple(torch.cat([p.spike_times[l] for p in parts]) for l in range(len(net.weights))),
        torch.cat([p.prediction for p in parts]),
        concat_counts([p.counts for p in parts]),
        mapping.arch.clock_mhz,
    )
