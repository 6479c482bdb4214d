"""Feature autoencoders: padded batch = each sequence alone, masks, KL against the closed form, recipe run."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vocoder.models import (
    FeatureAutoencoder,
    VariationalFeatureAutoencoder,
    gaussian_kl,
    masked_mean,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_model(variational: bool = False, **overrides) -> FeatureAutoencoder:
    options = dict(input_size=5, latent_size=3, channels=8, kernel_size=3, layers=2, mask_value=-3.0,
                   latent_mask_value=7.0)
    options.update(overrides)
    cls = VariationalFeatureAutoencoder if variational else FeatureAutoencoder
    model = cls(**options).double().eval()
    model.set_normalization(torch.linspace(-1, 1, 5), torch.linspace(0.5, 2, 5))
    return model


CASES = [
    dict(variational=False, downsample=1, latent_norm="tanh"),
    dict(variational=False, downsample=3, latent_norm="layer"),
    dict(variational=False, downsample=2, latent_norm="none"),
    dict(variational=True, downsample=1),
    dict(variational=True, downsample=4),
]


def padded_batch(lengths: list[int], dim: int = 5) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    sequences = [torch.randn(n, dim, dtype=torch.float64) for n in lengths]
    T = max(lengths)
    x = torch.full((len(lengths), T, dim), float("nan"), dtype=torch.float64)  # padding may hold anything
    for i, seq in enumerate(sequences):
        x[i, : len(seq)] = seq
    return x, torch.tensor(lengths), sequences


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_padded_batch_gives_each_sequence_what_it_gives_alone(case):
    model = make_model(**case)
    x, lengths, sequences = padded_batch([13, 7, 1, 10])
    batched = model.train_sample(x, lengths)
    s = model.downsample
    assert batched.latent_lengths.tolist() == [-(-n // s) for n in lengths.tolist()]
    for i, seq in enumerate(sequences):
        alone = model.train_sample(seq[None])
        n, m = len(seq), int(batched.latent_lengths[i])
        assert alone.rec.shape == (1, n, 5) and alone.latent.shape == (1, m, 3)
        torch.testing.assert_close(batched.rec[i, :n], alone.rec[0], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(batched.latent[i, :m], alone.latent[0], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(model.encode(x, lengths)[i, :m], model.encode(seq[None])[0])
        if case["variational"]:
            torch.testing.assert_close(batched.mean[i, :m], alone.mean[0])
            torch.testing.assert_close(batched.log_var[i, :m], alone.log_var[0])


@pytest.mark.parametrize("case", CASES[:2] + CASES[3:4], ids=["ae", "ae-down3", "vae"])
def test_masks_on_output_and_latent(case):
    model = make_model(**case)
    x, lengths, _ = padded_batch([9, 4])
    out = model.train_sample(x, lengths)
    assert torch.isfinite(out.rec[1, :4]).all() and torch.isfinite(out.latent).all()
    assert (out.rec[1, 4:] == -3.0).all() and (out.rec[0] != -3.0).all()
    m = int(out.latent_lengths[1])
    assert m < out.latent.shape[1]
    assert (out.latent[1, m:] == 7.0).all() and (out.latent[0] != 7.0).all()
    if case["variational"]:
        assert (out.mean[1, m:] == 7.0).all() and (out.log_var[1, m:] == 7.0).all()
    # the decoder reads no latent value past the latent lengths (mask values or anything else)
    latent = out.latent.clone()
    latent[1, m:] = float("nan")
    torch.testing.assert_close(model.decode(latent, lengths, frames=9), out.rec)


def test_padding_never_reaches_the_loss():
    model = make_model(downsample=2).train()
    x, lengths, _ = padded_batch([8, 5])
    x = torch.nan_to_num(x, nan=0.0).requires_grad_(True)
    out = model.train_sample(x, lengths)
    loss = masked_mean((model.normalize(out.rec) - model.normalize(x)).square(), lengths)
    loss.backward()
    assert torch.isfinite(loss)
    assert (x.grad[1, 5:] == 0).all() and x.grad[1, :5].abs().sum() > 0


def test_kl_against_the_closed_form():
    mean = torch.randn(3, 6, 4, dtype=torch.float64)
    log_var = torch.randn(3, 6, 4, dtype=torch.float64)
    lengths = torch.tensor([6, 2, 4])
    closed = kl_divergence(Normal(mean, (0.5 * log_var).exp()), Normal(0.0, 1.0)).sum(-1)  # (B, T')
    expected = sum(closed[b, :n].sum() for b, n in enumerate(lengths.tolist())) / lengths.sum()
    torch.testing.assert_close(gaussian_kl(mean, log_var, lengths), expected)
    # and through the model: its kl() is the closed form of its own posterior
    model = make_model(variational=True, downsample=2)
    x, x_lengths, _ = padded_batch([9, 3])
    out = model.train_sample(x, x_lengths)
    closed = kl_divergence(Normal(out.mean, (0.5 * out.log_var).exp()), Normal(0.0, 1.0)).sum(-1)
    n = out.latent_lengths.tolist()
    torch.testing.assert_close(model.kl(out), (closed[0, : n[0]].sum() + closed[1, : n[1]].sum()) / sum(n))


def test_reparameterize_samples_while_training_and_is_the_mean_in_eval():
    model = make_model(variational=True)
    mean = torch.zeros(20000, 1, 3, dtype=torch.float64)
    log_var = torch.full_like(mean, 2.0)
    assert torch.equal(model.reparameterize(mean, log_var), mean)
    model.train()
    draws = model.reparameterize(mean, log_var, generator=torch.Generator().manual_seed(0))
    assert abs(float(draws.var()) - torch.e**2) < 0.3  # σ² = exp(log σ²)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(kernel_size=2), "kernel_size"),
        (dict(downsample=0), "downsample"),
        (dict(latent_norm="batch"), "latent_norm"),
        (dict(latent_norm="layer", latent_size=1), "latent_size"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FeatureAutoencoder(**{"input_size": 5, "latent_size": 3, **kwargs})


@pytest.mark.slow
@pytest.mark.parametrize("variant", [[], ["model=feature_vae", "loss=feature_vae"]], ids=["ae", "vae"])
def test_vocoder_train_runs_the_recipe_on_the_sample_corpus(tmp_path, variant):
    overrides = [
        "recipe=slt_feature_ae", *variant, "data=sample", f"data.cache_dir={tmp_path / 'cache'}",
        "data.limit=6", "data.splits.n_eval=1", "data.splits.n_dev=1", "data.num_workers=0",
        f"trainer.out_dir={tmp_path / 'exp'}", "trainer.max_steps=3", "trainer.valid_every=3",
        "trainer.log_every=1", "trainer.batch_size=2", "trainer.progress=log", "model.channels=16",
        "loss.frames=40",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "vocoder.train", *overrides], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = r"validation: rec [0-9.]+ kl [0-9.]+" if variant else r"validation: rec [0-9.]+ total"
    assert re.search(expected, proc.stdout), proc.stdout[-2000:]
    # the pretrained LPCNet driven by the decoded features of the dev utterance
    synth = ["checkpoint=pretrained:kathleen_lpcnet", f"codec={tmp_path / 'exp' / 'checkpoints' / 'last.pt'}",
             f"input={tmp_path / 'cache'}", "split=dev", f"output_dir={tmp_path / 'coded'}"]
    proc = subprocess.run([sys.executable, "-m", "vocoder.synth", *synth], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "conditioning through the codec" in proc.stdout and "wrote 1 wav files" in proc.stdout, proc.stdout
    assert len(list((tmp_path / "coded").glob("*.wav"))) == 1


class _Recorder:
    """Stands in for a loaded vocoder: records the conditioning it is asked to synthesize."""

    conditioning_key = "features"
    batched = True

    def __init__(self):
        from vocoder.data import FeatureSettings

        self.model = torch.nn.Identity()
        self.features = FeatureSettings()
        self.seen = []

    def analyze(self, wave):
        raise AssertionError("not used")

    def synthesize(self, conditioning, seed=0):
        self.seen.extend(conditioning)
        return [c[:, 0].copy() for c in conditioning]


@pytest.mark.parametrize("downsample", [1, 3])
def test_coded_vocoder_synthesizes_from_the_decoded_features(downsample):
    from vocoder.inference import CodedVocoder, FeatureCodec

    model = make_model(downsample=downsample).float()
    codec = FeatureCodec(model, "features")
    inner = _Recorder()
    coded = CodedVocoder(inner, codec)
    inputs = [torch.randn(n, 5).numpy() for n in (7, 10)]
    coded.synthesize(inputs)
    for x, seen in zip(inputs, inner.seen, strict=True):
        assert seen.shape == x.shape
        with torch.no_grad():
            expected = model.decode(model.encode(torch.from_numpy(x)[None]), frames=len(x))[0].numpy()
        assert torch.allclose(torch.from_numpy(seen), torch.from_numpy(expected), rtol=0, atol=0)
        assert not torch.allclose(torch.from_numpy(seen), torch.from_numpy(x), atol=1e-2)  # it really went through
    assert codec.encode(inputs[1]).shape == (-(-10 // downsample), 3)


def test_codec_refuses_what_it_cannot_feed():
    from vocoder.inference import CodedVocoder, FeatureCodec, SynthesisError

    codec = FeatureCodec(make_model().float(), "mel")
    with pytest.raises(SynthesisError, match="trained on mel but the vocoder is conditioned on features"):
        CodedVocoder(_Recorder(), codec)
    coded = CodedVocoder(_Recorder(), FeatureCodec(make_model().float(), "features"))
    with pytest.raises(SynthesisError, match="takes 5 values per frame, the inputs have 4"):
        coded.synthesize([torch.randn(6, 4).numpy()])
    with pytest.raises(SynthesisError, match=r"codec=pretrained:kathleen_lpcnet: holds a LPCNet, not a feature autoencoder"):
        FeatureCodec.load("pretrained:kathleen_lpcnet")
