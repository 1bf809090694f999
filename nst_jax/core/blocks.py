"""The objective by spatial blocks: the whole image's loss and gradient, exactly, in memory bounded by one block.

Every term is a function of sums over positions (the content term; each layer's Gram matrix, its cosine form, the
mean and covariance, of the image or of each guide's share) or, for the sliced Wasserstein statistic, of the
projections at every position (a map the size of the layer's positions times its directions). So:

1. the image is cut into a `Grid` of square tiles whose side is a multiple of 16, each computed through VGG19 as a
   *window*: the tile with a halo of the deepest layer's receptive radius around it, rounded up to 16 px (80 px for
   relu5_1). The window's origin lies on the 16-px grid, so every pooling's cells are the whole image's, and every
   convolution's input is zeroed outside the image (`vgg.window_mask`), as the whole image's zero padding makes it;
   the tile's positions then have exactly the whole image's activations (receptive fields: ../shared/FACTS.md).
2. the forward pass runs the windows one after another (`lax.scan`) and adds up each tile's sums (and places its
   projections); the loss is a function of those totals (`_finish`).
3. the backward pass asks that function for the totals' cotangents, then runs each window again, forward and
   backward, pulling those cotangents back to the window's pixels (`jax.vjp`), and adds the windows' gradients.

The halo is recomputed rather than exchanged layer by layer (Galerne et al., "Scaling Painting Style Transfer",
EGSR 2024, exchange borders between blocks at every layer): recomputation keeps a block one XLA program with no
state between layers, and on a CPU its cost is what docs/print.md measures. A step costs one forward pass more than
the whole image's (the totals must be known before any gradient) plus the halos.

Shapes: z [B, H, W, 3]; a layer's map [B, H_l, W_l, N]; a tile of it [B, t_l, t_l, N] with t_l = tile / stride.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from . import losses, objective, statistics, vgg
from .layers import CONV_NAMES, CONV_SHAPES
from .objective import LossSpec, layer_guides, net_input
from .objective import features as whole_features

GRID = 16  # the pooling grid: 2 ** 4 poolings before relu5_1's block


def receptive_field(layer: str) -> int:
    """The side in pixels of the image region one position of `layer` (conv or relu) sees: 3 for relu1_1, 10
    relu2_1, 24 relu3_1, 68 relu4_1, 84 relu4_2, 156 relu5_1."""
    field, jump = 1, 1
    for conv in CONV_NAMES:
        if conv.endswith("_1") and conv != "conv1_1":
            field, jump = field + jump, jump * 2  # a 2x2 pooling, stride 2
        field += 2 * jump  # a 3x3 convolution
        if conv == layer.replace("relu", "conv"):
            return field
    raise ValueError(f"unknown layer {layer!r}")


def halo(layers) -> int:
    """The halo around a tile: the deepest layer's receptive radius, (field - 1) / 2, rounded up to 16 px."""
    radius = (receptive_field(vgg.deepest(layers)) - 1) / 2
    return int(math.ceil(radius / GRID)) * GRID


class Grid(NamedTuple):
    """Square tiles of side `tile` (a multiple of 16) over an image of height x width, rows x cols of them from
    the top-left corner (the last row and column may reach past the image), each computed in a window of
    tile + 2 halo pixels."""

    height: int
    width: int
    tile: int
    halo: int

    @property
    def rows(self) -> int:
        return -(-self.height // self.tile)

    @property
    def cols(self) -> int:
        return -(-self.width // self.tile)

    @property
    def count(self) -> int:
        return self.rows * self.cols

    @property
    def window(self) -> int:
        return self.tile + 2 * self.halo

    def origins(self) -> np.ndarray:
        """[count, 2] int32: each window's top-left pixel in the image (row, col; negative at the top and left)."""
        return np.asarray([(i * self.tile - self.halo, j * self.tile - self.halo)
                           for i in range(self.rows) for j in range(self.cols)], np.int32)

    def padding(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """The pixels added above/below and left/right so that every window lies inside the padded image."""
        return ((self.halo, self.rows * self.tile - self.height + self.halo),
                (self.halo, self.cols * self.tile - self.width + self.halo))


def grid_for(shape: tuple[int, int], tile: int, layers) -> Optional[Grid]:
    """The grid of an image of `shape` (H, W) under tiles of side `tile` (`LossSpec.block_tile`), or None when the
    image is computed whole: no tile (0), or an image that fits in one tile."""
    if not tile or (shape[0] <= tile and shape[1] <= tile):
        return None
    if tile % GRID:
        raise ValueError(f"the block side must be a multiple of {GRID} px, got {tile}")
    return Grid(int(shape[0]), int(shape[1]), int(tile), halo(layers))


def _map_sizes(grid: Grid, layer: str) -> tuple[int, int]:
    """(H_l, W_l): the whole image's map at `layer`."""
    return vgg.map_size(grid.height, grid.width, layer)


def _positions(grid: Grid, layer: str) -> int:
    """M_l = H_l W_l: the whole image's positions at `layer`."""
    return math.prod(_map_sizes(grid, layer))


def _filters(layer: str) -> int:
    """N_l: the filters of `layer`."""
    return CONV_SHAPES[layer.replace("relu", "conv")][3]


def _centre(f: jax.Array, layer: str, grid: Grid) -> jax.Array:
    """A window's map [B, h, w, ...] at `layer` -> its tile's positions [B, t_l, t_l, ...]."""
    s = vgg.stride(layer)
    c, t = grid.halo // s, grid.tile // s
    return f[:, c:c + t, c:c + t]


def _tile_start(origin: jax.Array, layer: str, grid: Grid) -> tuple:
    """Where the tile of the window at `origin` starts in a map of `layer` padded to the grid (row, col); at the
    image's pixels (stride 1) also where the window starts in the padded image (`Grid.padding`)."""
    s = vgg.stride(layer)
    return (origin[0] + grid.halo) // s, (origin[1] + grid.halo) // s


def _at(full: jax.Array, origin: jax.Array, layer: str, grid: Grid, axis: int = 1) -> jax.Array:
    """The tile at `origin` of a map padded to the grid (`pad_map`), its rows on `axis` and columns on axis + 1."""
    t = grid.tile // vgg.stride(layer)
    start = [0] * full.ndim
    start[axis], start[axis + 1] = _tile_start(origin, layer, grid)
    size = list(full.shape)
    size[axis], size[axis + 1] = t, t
    return jax.lax.dynamic_slice(full, _int32(start), size)


def _int32(starts) -> list:
    """Start indices of one integer type (dynamic slices refuse a mix, as under x64)."""
    return [jnp.asarray(x, jnp.int32) for x in starts]


def _placed(full: jax.Array, piece: jax.Array, origin: jax.Array, layer: str, grid: Grid) -> jax.Array:
    """`full` (a map padded to the grid, [B, rows t_l, cols t_l, ...]) with the tile at `origin` set to `piece`."""
    start = [0, *_tile_start(origin, layer, grid)] + [0] * (full.ndim - 3)
    return jax.lax.dynamic_update_slice(full, piece.astype(full.dtype), _int32(start))


def pad_map(m: jax.Array, layer: str, grid: Grid, axis: int = 1) -> jax.Array:
    """A whole image's map at `layer` (rows on `axis`) padded with zeros to the grid's rows x cols tiles."""
    t = grid.tile // vgg.stride(layer)
    pads = [(0, 0)] * m.ndim
    pads[axis], pads[axis + 1] = (0, grid.rows * t - m.shape[axis]), (0, grid.cols * t - m.shape[axis + 1])
    return jnp.pad(m, pads)


def _crop(full: jax.Array, layer: str, grid: Grid) -> jax.Array:
    """A map padded to the grid [B, rows t_l, cols t_l, P] -> the whole image's [B, H_l, W_l, P]."""
    h, w = _map_sizes(grid, layer)
    return full[:, :h, :w]


def _window(zp: jax.Array, origin: jax.Array, grid: Grid) -> jax.Array:
    """The window at `origin` of the padded image zp [B, H', W', C]."""
    return jax.lax.dynamic_slice(zp, _window_start(origin, grid), (zp.shape[0], grid.window, grid.window, zp.shape[3]))


def _window_start(origin: jax.Array, grid: Grid) -> list:
    """The window at `origin`'s start in the padded image [B, H', W', C] (`_padded`)."""
    return _int32((0, *_tile_start(origin, "conv1_1", grid), 0))


def _padded(z: jax.Array, grid: Grid) -> jax.Array:
    (top, bottom), (left, right) = grid.padding()
    return jnp.pad(z, ((0, 0), (top, bottom), (left, right), (0, 0)))


def _window_features(params, window, origin, spec: LossSpec, grid: Grid, layers, flipped=None):
    """The tiles' maps {layer: [B, t_l, t_l, N]} of the window at `origin` (the variable's pixels, [B, w, w, 3])."""
    feats = vgg.features(params, net_input(window, spec), layers, spec.pooling, spec.conv_precision, False,
                         flipped, origin, (grid.height, grid.width))
    return {l: _centre(feats[l], l, grid) for l in layers}


def _tile_valid(origin, layer: str, grid: Grid) -> jax.Array:
    """[t_l, t_l] bool: the tile's positions at `layer` that lie in the image."""
    t = grid.tile // vgg.stride(layer)
    return vgg.window_mask(origin + grid.halo, (grid.height, grid.width), layer, (t, t))


def scan_blocks(fn, z: jax.Array, grid: Grid):
    """Run fn(window, origin) -> (sums, maps) over every window of z [B, H, W, C], one after another: the sums
    (a pytree) added up, the maps ({layer: a tile [B, t_l, t_l, ...]}) placed into maps padded to the grid."""
    zp = _padded(z, grid)
    origins = jnp.asarray(grid.origins())
    sums_shape, maps_shape = jax.eval_shape(fn, _window(zp, origins[0], grid), origins[0])
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), sums_shape)
    full = {l: jnp.zeros((m.shape[0], grid.rows * m.shape[1], grid.cols * m.shape[2]) + m.shape[3:], m.dtype)
            for l, m in maps_shape.items()}

    def body(carry, origin):
        total, placed = carry
        sums, maps = fn(_window(zp, origin, grid), origin)
        return (jax.tree.map(jnp.add, total, sums),
                {l: _placed(placed[l], maps[l], origin, l, grid) for l in maps}), None

    (total, placed), _ = jax.lax.scan(body, (zeros, full), origins)
    return total, placed


# --- the loss ---------------------------------------------------------------------------------------------------


def _directions(target) -> jax.Array:
    """The swd target's directions [N, P] (one set for the K stacked targets of guided styles)."""
    d = target["directions"]
    return d if d.ndim == 2 else d[0]


def _projections(f: jax.Array, directions: jax.Array) -> jax.Array:
    """[B, h, w, N] features on directions [N, P] -> [B, h, w, P] in the accumulation dtype."""
    acc = statistics.accumulation_dtype(f.dtype)
    return jnp.einsum("bhwn,np->bhwp", f.astype(acc), directions.astype(acc),
                      precision=jax.lax.Precision.HIGHEST)


def _style_sums(f: jax.Array, guides, target, statistic: str, valid: jax.Array):
    """One tile's sums at a style layer: f [B, t, t, N] (zero outside the image), guides [K, t, t] or None,
    valid [t, t]. gram and cosine: the Gram matrix of f (or of each T_k f) [(K,) B, N, N]; meancov: about the
    target's mean c (a constant close to the result's mean, so that the covariance does not cancel),
    {"s1": sum w^2 (f - c) [(K,) B, N], "s2": Gram of w (f - c)} with w the guide or the image's positions."""
    acc = statistics.accumulation_dtype(f.dtype)
    weights = [valid.astype(acc)] if guides is None else [g.astype(acc) for g in guides]

    def one(w, k):
        if statistic in ("gram", "cosine"):
            return statistics.gram(f if guides is None else statistics.guided_features(f, w)[0])
        c = target["mean"] if guides is None else target["mean"][k]
        centred = (f.astype(acc) - c[:, None, None, :]) * w[None, :, :, None]
        return {"s1": jnp.sum(centred * w[None, :, :, None], axis=(1, 2)), "s2": statistics.gram(centred)}

    parts = [one(w, k) for k, w in enumerate(weights)]
    return parts[0] if guides is None else jax.tree.map(lambda *p: jnp.stack(p), *parts)


def _loss_parts(params, flipped, targets, spec: LossSpec, grid: Grid, window, origin):
    """One window's (sums, maps): sums {"content": {layer: [B]}, "style": {layer: `_style_sums`}} and, for swd,
    maps {layer: the tile's projections [B, t_l, t_l, P]}."""
    feats = _window_features(params, window, origin, spec, grid, spec.layers, flipped)
    sums, maps = {"content": {}, "style": {}}, {}
    for l in spec.content_layers:
        f = feats[l]
        acc = statistics.accumulation_dtype(f.dtype)
        diff = f.astype(acc) - _at(targets["content"][l], origin, l, grid).astype(acc)
        if "content_guides" in targets:
            diff = diff * _at(targets["content_guides"][l], origin, l, grid, axis=0).astype(acc)[None, :, :, None]
        sums["content"][l] = jnp.sum(diff * diff, axis=(1, 2, 3))
    guides = targets.get("style_guides")
    for l in spec.style_layers:
        target = targets["style"][l]
        if spec.style_statistic == "swd":
            maps[l] = _projections(feats[l], _directions(target))
            continue
        g = None if guides is None else _at(guides[l], origin, l, grid)
        sums["style"][l] = _style_sums(feats[l], g, target, spec.style_statistic, _tile_valid(origin, l, grid))
    return sums, maps


def statistic_from_sums(sums, statistic: str, normalization: str, n: int, m: int, guide=None, centre=None):
    """A layer's `statistics.layer_statistic` from its sums over the positions (`_style_sums` added over tiles), for
    n filters and m positions; guide: the whole guide map [H_l, W_l] (zeros around it change nothing) when the sums
    are a guided style's; centre: the c the meancov sums were taken about ([B, N])."""
    if statistic == "meancov":
        if guide is None:
            d = sums["s1"] / float(m)
            return {"mean": centre + d, "cov": sums["s2"] / float(m) - d[:, :, None] * d[:, None, :]}
        t = guide.astype(sums["s1"].dtype)
        mass = jnp.sum(t * t)
        inverse = statistics.guided_factor(mass, 1.0)
        d = sums["s1"] * inverse
        return {"mean": jnp.where(mass > 0, centre + d, 0.0),
                "cov": sums["s2"] * inverse - d[:, :, None] * d[:, None, :]}
    g = sums
    if statistic == "cosine":
        norm = jnp.sqrt(jnp.diagonal(g, axis1=1, axis2=2) + statistics.EPS)  # [B, N]: each filter's |F_i|
        return g / (norm[:, :, None] * norm[:, None, :])
    if guide is not None:
        t = guide.astype(g.dtype)
        g = g * statistics.guided_factor(jnp.sum(t * t), float(m))
    return g / (float(n) * float(m)) if normalization == "mean" else g


def _sorted_map(full: jax.Array, layer: str, grid: Grid) -> jax.Array:
    """A layer's projections placed over the grid [B, rows t_l, cols t_l, P] -> sorted over the whole image's
    positions [B, P, M] (`statistics.sorted_projections`'s layout)."""
    p = _crop(full, layer, grid)
    b, h, w, k = p.shape
    return statistics.ascending(jnp.swapaxes(p.reshape(b, h * w, k), 1, 2))


def _finish(sums, maps, targets, layer_weights, spec: LossSpec, grid: Grid):
    """(content [B], style [B]): the unweighted terms of `objective.loss_terms` from the totals over all tiles."""
    content = 0.0
    for l in spec.content_layers:
        content = content + losses.content_scale(_filters(l), _positions(grid, l), spec.normalization) * sums[
            "content"][l]
    guides = targets.get("style_guides")
    style = 0.0
    for l, weight in zip(spec.style_layers, layer_weights):
        n, m = _filters(l), _positions(grid, l)
        target = targets["style"][l]
        if spec.style_statistic == "swd":
            stat = _sorted_map(maps[l], l, grid)
        if guides is None:
            if spec.style_statistic != "swd":
                stat = statistic_from_sums(sums["style"][l], spec.style_statistic, spec.normalization, n, m,
                                           centre=target["mean"] if spec.style_statistic == "meancov" else None)
            style = style + weight * losses.statistic_distance(stat, target, spec.normalization,
                                                               spec.style_statistic, n, m)
            continue
        for k in range(guides[l].shape[0]):
            target_k = jax.tree.map(lambda a, k=k: a[k], target)
            guide = guides[l][k]
            if spec.style_statistic != "swd":
                part = jax.tree.map(lambda a, k=k: a[k], sums["style"][l])
                stat = statistic_from_sums(part, spec.style_statistic, spec.normalization, n, m, guide,
                                           target_k["mean"] if spec.style_statistic == "meancov" else None)
            distance = losses.statistic_distance(stat, target_k, spec.normalization, spec.style_statistic, n, m)
            style = style + weight * losses.guided_share(guide, m, distance.dtype) * distance
    return content, style


def _zeros(tree):
    return jax.tree.map(jnp.zeros_like, tree)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def blocked_terms(z, params, flipped, targets, layer_weights, spec: LossSpec, grid: Grid):
    """(content [B], style [B]) of `objective.loss_terms` at z [B, H, W, 3], computed tile by tile over `grid`;
    targets as `compute_targets` makes them for blocks (content maps and guides padded to the grid, `pad_map`);
    layer_weights: w_l [L]. Differentiable in z (by blocks: see the module's docstring)."""
    return _forward(z, params, flipped, targets, layer_weights, spec, grid)[0]


def _forward(z, params, flipped, targets, layer_weights, spec, grid):
    parts = scan_blocks(functools.partial(_loss_parts, params, flipped, targets, spec, grid), z, grid)
    return _finish(*parts, targets, layer_weights, spec, grid), parts


def _blocked_fwd(z, params, flipped, targets, layer_weights, spec, grid):
    out, parts = _forward(z, params, flipped, targets, layer_weights, spec, grid)
    return out, (z, params, flipped, targets, layer_weights, parts)


def _blocked_bwd(spec, grid, residuals, cotangent):
    z, params, flipped, targets, layer_weights, parts = residuals
    _, pullback = jax.vjp(lambda p: _finish(*p, targets, layer_weights, spec, grid), parts)
    (ct_sums, ct_maps), = pullback(cotangent)
    zp = _padded(z, grid)

    def body(gz, origin):
        window = _window(zp, origin, grid)
        _, pull = jax.vjp(lambda v: _loss_parts(params, flipped, targets, spec, grid, v, origin), window)
        (g,) = pull((ct_sums, {l: _at(ct_maps[l], origin, l, grid) for l in ct_maps}))
        start = _window_start(origin, grid)
        return jax.lax.dynamic_update_slice(gz, jax.lax.dynamic_slice(gz, start, g.shape) + g, start), None

    gz, _ = jax.lax.scan(body, jnp.zeros_like(zp), jnp.asarray(grid.origins()))
    (top, _), (left, _) = grid.padding()
    grad = gz[:, top:top + grid.height, left:left + grid.width]
    return grad, _zeros(params), _zeros(flipped), _zeros(targets), _zeros(layer_weights)


blocked_terms.defvjp(_blocked_fwd, _blocked_bwd)


def loss_terms(z, params, targets, coefficients, spec: LossSpec, flipped=None) -> dict[str, jax.Array]:
    """`objective.loss_terms`, by blocks when the image is larger than `spec.block_tile` (`grid_for`): the same
    terms, equal to float rounding."""
    grid = grid_for(z.shape[1:3], spec.block_tile, spec.layers)
    if grid is None:
        return objective.loss_terms(z, params, targets, coefficients, spec, flipped)
    if spec.normalize_gradients:
        raise ValueError("normalize_gradients needs the whole image's gradients: it cannot run by blocks")
    content, style = blocked_terms(z, params, flipped, targets, coefficients["layers"], spec, grid)
    tv = losses.total_variation(z, spec.tv_form)
    total = losses.total_loss(content, style, tv, coefficients["content"], coefficients["style"], coefficients["tv"])
    return {"content": content, "style": style, "tv": tv, "total": total}


# --- the targets ------------------------------------------------------------------------------------------------


def _style_stats(params, image, spec: LossSpec, positions: dict, directions: dict) -> dict:
    """One style image's statistics at every style layer, {layer: {kind: statistic}} for the kinds its target
    needs ("gram", and the run's statistic: `layer_statistic`, or for swd the quantiles at the generated image's
    positions[layer] levels, on directions[layer]), by blocks when the image is larger than a tile (one pass over
    its tiles; two for meancov, whose covariance is taken about the mean, as the whole image's is)."""
    grid = grid_for(image.shape[1:3], spec.block_tile, spec.layers)
    layers, statistic = spec.style_layers, spec.style_statistic
    if grid is None:
        feats = whole_features(params, image, spec)
        out = {l: {"gram": statistics.layer_statistic(feats[l], spec.normalization, "gram")} for l in layers}
        for l in layers:
            if statistic == "swd":
                out[l]["swd"] = statistics.quantiles(statistics.sorted_projections(feats[l], directions[l]),
                                                     positions[l])
            elif statistic != "gram":
                out[l][statistic] = statistics.layer_statistic(feats[l], spec.normalization, statistic)
        return out

    def tiles(fn):
        return scan_blocks(lambda v, o: fn(_window_features(params, v, o, spec, grid, layers), o), image, grid)

    grams, maps = tiles(lambda f, o: ({l: statistics.gram(f[l]) for l in layers},
                                      {l: _projections(f[l], directions[l]) for l in directions}))
    own = {l: _positions(grid, l) for l in layers}  # the style image's own positions
    out = {l: {"gram": statistic_from_sums(grams[l], "gram", spec.normalization, _filters(l), own[l])}
           for l in layers}
    for l in layers:
        if statistic == "swd":
            out[l]["swd"] = statistics.quantiles(_sorted_map(maps[l], l, grid), positions[l])
        elif statistic == "cosine":
            out[l]["cosine"] = statistic_from_sums(grams[l], "cosine", spec.normalization, _filters(l), own[l])
    if statistic == "meancov":
        sums, _ = tiles(lambda f, o: ({l: jnp.sum(f[l].astype(statistics.accumulation_dtype(f[l].dtype)),
                                                  axis=(1, 2)) for l in layers}, {}))
        means = {l: sums[l] / float(own[l]) for l in layers}
        centred, _ = tiles(lambda f, o: ({l: statistics.gram(
            (f[l].astype(means[l].dtype) - means[l][:, None, None, :]) * _tile_valid(o, l, grid)[None, :, :, None])
            for l in layers}, {}))
        for l in layers:
            out[l]["meancov"] = {"mean": means[l], "cov": centred[l] / float(own[l])}
    return out


@functools.partial(jax.jit, static_argnames=("spec",))
def compute_targets(params, content: jax.Array, style, spec: LossSpec, blend=None, style_masks=None,
                    content_mask=None, key=None) -> dict:
    """`objective.compute_targets`, by blocks where an image is larger than `spec.block_tile`: the content's maps
    (and the guides) padded to its grid (`pad_map`), each style's statistics summed over its own tiles."""
    grid = grid_for(content.shape[1:3], spec.block_tile, spec.layers)
    if grid is None:
        return objective.compute_targets(params, content, style, spec, blend, style_masks, content_mask, key)
    if spec.style_statistic == "swd" and key is None:
        raise ValueError("the swd statistic needs a key for its random directions")
    _, maps = scan_blocks(lambda v, o: ({}, _window_features(params, v, o, spec, grid, spec.content_layers)),
                          content, grid)
    out = {"content": maps, "style": {}}
    styles = style if isinstance(style, (tuple, list)) else (style,)
    positions = {l: _positions(grid, l) for l in spec.style_layers}
    directions = {l: objective.swd_directions(key, index, _filters(l), spec.compute_dtype)
                  for index, l in enumerate(spec.style_layers)} if spec.style_statistic == "swd" else {}
    stats = [_style_stats(params, s, spec, positions, directions) for s in styles]
    for index, l in enumerate(spec.style_layers):
        n, m = _filters(l), positions[l]
        if style_masks is not None:
            per_style = [losses.target_from_statistics(lambda _, of, k=k, l=l: stats[k][l][of], 1, None,
                                                       spec.normalization, spec.style_statistic,
                                                       directions.get(l), n, m)
                         for k in range(len(styles))]
            out["style"][l] = jax.tree.map(lambda *t: jnp.stack(t), *per_style)
        else:
            weights = None if len(styles) == 1 else blend[:, index]
            out["style"][l] = losses.target_from_statistics(lambda k, of, l=l: stats[k][l][of], len(styles), weights,
                                                            spec.normalization, spec.style_statistic,
                                                            directions.get(l), n, m)
    if style_masks is not None:
        out["style_guides"] = {l: pad_map(layer_guides(style_masks, l), l, grid) for l in spec.style_layers}
    if content_mask is not None:
        out["content_guides"] = {l: pad_map(layer_guides(content_mask[None], l), l, grid)[0]
                                 for l in spec.content_layers}
    return out
