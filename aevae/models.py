"""AutoEncoder and VAE on one shared convolutional backbone.

Both models are built only from a ModelConfig and share the vocabulary
encode -> reparameterize -> decode (forward runs all three). They differ only in the
latent head: the AE maps features to a deterministic code; the VAE maps them to a mean
and a log-variance and samples z = mu + sigma * eps (the reparameterisation trick).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import (
    Latent,
    ModelConfig,
    nearest_latents,
    spatial_placement,
    spatial_sizes,
    stage_sizes,
)


@dataclass
class Encoded:
    mu: torch.Tensor  # the AE's code, or the VAE's mean
    logvar: torch.Tensor | None = None  # None for the AE


@dataclass
class Output:
    recon: torch.Tensor
    z: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor | None = None


@dataclass(frozen=True)
class Plan:
    """Layer plan derived from a config: how many stages, their widths and sizes."""

    widths: tuple[int, ...]
    sizes: tuple[int, ...]  # spatial size before the first stage and after each stage
    latent: Latent
    latent_kernel: int  # spatial latents: 1 (1x1 conv) or 3 (valid 3x3 conv, shrinks by 2)

    @property
    def feature_shape(self) -> tuple[int, int, int]:
        c = self.widths[-1] if self.widths else 3
        return c, self.sizes[-1], self.sizes[-1]


def plan(cfg: ModelConfig) -> Plan:
    lat = cfg.latent_shape
    if not lat.spatial:
        n = len(cfg.widths)
        sizes = stage_sizes(cfg.image_size, n)
        if sizes[-1] < 1:
            raise ValueError(f"{n} stages are too many for {cfg.image_size}px images")
        return Plan(cfg.widths, tuple(sizes), lat, 0)
    # A spatial latent picks the number of stride-2 stages whose output is h x h (1x1 conv),
    # or h + 2 (valid 3x3 conv, e.g. report A's 64x48x48 from 50x50 images).
    placed = spatial_placement(lat.h, cfg.image_size)
    if placed is None:
        raise ValueError(
            f"latent {lat} cannot be reached from {cfg.image_size}px images; nearest that work: "
            f"{', '.join(nearest_latents(str(lat), cfg.image_size))} (spatial sizes possible here: "
            f"{', '.join(map(str, spatial_sizes(cfg.image_size)))})")
    n, kernel = placed
    widths = list(cfg.widths[:n])
    while len(widths) < n:  # more stages than widths given: keep doubling
        widths.append(min(2 * widths[-1], 512))
    return Plan(tuple(widths), tuple(stage_sizes(cfg.image_size, n)), lat, kernel)


def _norm(cfg: ModelConfig, channels: int, first: bool) -> list[nn.Module]:
    use = cfg.batchnorm and (cfg.first_batchnorm or not first)
    return [nn.BatchNorm2d(channels)] if use else []


class Encoder(nn.Module):
    """Down-sampling stages: images (N,3,S,S) -> features (N,C,s,s)."""

    def __init__(self, cfg: ModelConfig, p: Plan):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for i, w in enumerate(p.widths):
            if cfg.pool:
                layers += [nn.Conv2d(cin, w, 3, 1, 1), *_norm(cfg, w, i == 0), nn.ReLU(inplace=True),
                           nn.MaxPool2d(2)]
            else:
                layers += [nn.Conv2d(cin, w, 4, 2, 1), *_norm(cfg, w, i == 0), nn.ReLU(inplace=True)]
            cin = w
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


class Decoder(nn.Module):
    """Latent z -> images in [0,1], mirroring the encoder so output size == input size."""

    def __init__(self, cfg: ModelConfig, p: Plan):
        super().__init__()
        c, s, _ = p.feature_shape
        lat = p.latent
        layers: list[nn.Module] = []
        if not lat.spatial:
            layers += [nn.Linear(lat.channels, c * s * s), nn.ReLU(inplace=True), nn.Unflatten(1, (c, s, s))]
        elif lat.channels != c or p.latent_kernel != 1:
            layers.append(nn.ConvTranspose2d(lat.channels, c, p.latent_kernel))
            if p.widths:  # with no stages this conv already makes the RGB output
                layers += [*_norm(cfg, c, False), nn.ReLU(inplace=True)]
        chans = [3, *p.widths]
        for i in range(len(p.widths), 0, -1):
            # output_padding restores odd sizes (50 -> 25 -> 12 -> 25 needs 2*12 + 1).
            pad = p.sizes[i - 1] % 2
            layers.append(nn.ConvTranspose2d(chans[i], chans[i - 1], 4, 2, 1, output_padding=pad))
            if i > 1:
                layers += [*_norm(cfg, chans[i - 1], False), nn.ReLU(inplace=True)]
        layers.append(nn.Sigmoid())
        self.layers = nn.Sequential(*layers)

    def forward(self, z):
        return self.layers(z)


def _head(p: Plan) -> nn.Module:
    """Features -> one latent tensor (the AE's code, or one of the VAE's mu / log-variance)."""
    c, s, _ = p.feature_shape
    lat = p.latent
    if not lat.spatial:
        return nn.Sequential(nn.Flatten(), nn.Linear(c * s * s, lat.channels))
    return nn.Conv2d(c, lat.channels, p.latent_kernel)


class AutoEncoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.kind != self.kind:
            config = config.with_(kind=self.kind)
        self.config = config
        self.plan = plan(config)
        self.encoder = Encoder(config, self.plan)
        self._make_head()
        self.decoder = Decoder(config, self.plan)

    kind = "ae"

    def _make_head(self):
        p = self.plan
        same = p.latent.spatial and p.latent.channels == p.feature_shape[0] and p.latent_kernel == 1
        # Report B's AE uses the last encoder stage itself as its 256x8x8 code.
        self.code = nn.Identity() if same and p.widths else _head(p)

    def encode(self, x: torch.Tensor) -> Encoded:
        return Encoded(self.code(self.encoder(x)))

    def reparameterize(self, mu, logvar=None, generator=None) -> torch.Tensor:
        return mu

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Output:
        e = self.encode(x)
        z = self.reparameterize(e.mu, e.logvar, generator)
        return Output(self.decode(z), z, e.mu, e.logvar)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstruction: the VAE decodes its mean."""
        return self.decode(self.encode(x).mu)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        lat = self.plan.latent
        return (lat.channels, lat.h, lat.w) if lat.spatial else (lat.channels,)

    @property
    def latent_numel(self) -> int:
        return self.plan.latent.numel

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


class VAE(AutoEncoder):
    kind = "vae"

    def _make_head(self):
        self.mu = _head(self.plan)
        self.logvar = _head(self.plan)

    def encode(self, x: torch.Tensor) -> Encoded:
        h = self.encoder(x)
        return Encoded(self.mu(h), self.logvar(h))

    def reparameterize(self, mu, logvar=None, generator=None) -> torch.Tensor:
        # z = mu + sigma * eps, eps ~ N(0, I); clamped so exp() cannot overflow early in training.
        std = torch.exp(0.5 * logvar.clamp(*LOGVAR_RANGE))
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        return mu + std * eps


LOGVAR_RANGE = (-30.0, 20.0)  # where sampling clamps log sigma^2


def build_model(config: ModelConfig) -> AutoEncoder:
    return {"ae": AutoEncoder, "vae": VAE}[config.kind](config)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per sample, in nats.

    -1/2 * sum(1 + log sigma^2 - mu^2 - sigma^2)  (Kingma & Welling 2014, appendix B).
    """
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).flatten(1).sum(1)


@dataclass
class LossTerms:
    loss: torch.Tensor  # the objective, averaged over the batch
    sse: torch.Tensor  # squared error summed per image, averaged over the batch
    kl: torch.Tensor  # KL per image, averaged over the batch (0 for the AE)
    mse: torch.Tensor  # squared error per pixel value (what the reports call MSE loss)


def loss_terms(out: Output, x: torch.Tensor, beta: float = 1.0) -> LossTerms:
    """Summed per image, averaged over the batch, so beta and lr don't depend on batch size."""
    sse = F.mse_loss(out.recon, x, reduction="none").flatten(1).sum(1).mean()
    if out.logvar is None:
        return LossTerms(sse, sse, sse.new_zeros(()), sse / x[0].numel())
    if beta == 0:
        # Nothing holds log sigma^2 down at beta 0: it passed 88 on 18 photos, exp() gave inf and
        # 0 * inf made the loss NaN. The KL is then only shown: that of the sigma sampling uses.
        kl = kl_divergence(out.mu, out.logvar.clamp(*LOGVAR_RANGE)).mean().detach()
        return LossTerms(sse, sse, kl, sse / x[0].numel())
    kl = kl_divergence(out.mu, out.logvar).mean()
    return LossTerms(sse + beta * kl, sse, kl, sse / x[0].numel())


def describe_layer(m: nn.Module) -> str:
    """Short layer text: Conv2d(3->64, k4 s2 p1) instead of the full repr."""
    if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
        extra = f" op{m.output_padding[0]}" if getattr(m, "output_padding", (0,))[0] else ""
        return (f"{type(m).__name__}({m.in_channels}->{m.out_channels}, k{m.kernel_size[0]} "
                f"s{m.stride[0]} p{m.padding[0]}{extra})")
    if isinstance(m, nn.BatchNorm2d):
        return f"BatchNorm2d({m.num_features})"
    if isinstance(m, nn.Linear):
        return f"Linear({m.in_features}->{m.out_features})"
    if isinstance(m, nn.MaxPool2d):
        return f"MaxPool2d({m.kernel_size})"
    return type(m).__name__


def summary_rows(model: AutoEncoder) -> list[dict]:
    """One row per layer: name, layer, output shape, parameters; from a real forward pass."""
    rows: list[dict] = []
    hooks = []
    for name, m in model.named_modules():
        if next(m.children(), None) is None and name:
            def hook(mod, inp, out, name=name):
                shape = tuple(out.shape[1:]) if torch.is_tensor(out) else ()
                rows.append({"name": name, "layer": describe_layer(mod), "output": "x".join(map(str, shape)),
                             "params": sum(p.numel() for p in mod.parameters())})
            hooks.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            s = model.config.image_size
            e = model.encode(torch.zeros(1, 3, s, s))
            if e.logvar is not None:
                model.reparameterize(e.mu, e.logvar)
            model.decode(e.mu)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return rows


def summary(model: AutoEncoder) -> str:
    """A printable architecture table (report B's Q1)."""
    cfg = model.config
    s = cfg.image_size
    lines = [f"{cfg.kind.upper()}  input 3x{s}x{s} ({3 * s * s:,} values)  latent "
             f"{'x'.join(map(str, model.latent_shape))} ({model.latent_numel:,} values)  "
             f"parameters {model.n_params:,}"]
    rows = summary_rows(model)
    w = max(len(r["name"]) for r in rows)
    lw = min(max(len(r["layer"]) for r in rows), 70)
    lines.append(f"{'name':<{w}}  {'layer':<{lw}}  {'output':>12}  {'params':>10}")
    for r in rows:
        lines.append(f"{r['name']:<{w}}  {r['layer'][:lw]:<{lw}}  {r['output']:>12}  {r['params']:>10,}")
    return "\n".join(lines)
