"""Feature converter (LPCNet features → log-mel) and its MGE training module, against float64 references."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from vocoder.checkpoints import CheckpointError
from vocoder.data import FeatureSettings, load_stats, load_utterance, prepare_corpus, read_split
from vocoder.errors import ConfigError
from vocoder.losses import MGELoss, delta_windows, normalize_windows
from vocoder.models import FeatureConverter
from vocoder.training import MGEFeatureTask, Trainer, TrainerSettings, load_feature_converter
from vocoder.training._feature_task import FEATURE_TERMS, natural_window_features

FEATURES = FeatureSettings()
SMALL = {"_target_": "vocoder.models.FeatureConverter", "channels": 32, "kernel_size": 3, "layers": 2}
HTS_WINDOWS = delta_windows(width=2, order=2)
FRAMES = 40


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """The first 8 utterances of the embedded sample corpus prepared into a fresh cache (5/2/1)."""
    from vocoder.config import SAMPLE_DIR

    cache_dir = tmp_path_factory.mktemp("cache")
    prepare_corpus(
        SAMPLE_DIR / "kathleen",
        cache_dir,
        FEATURES,
        n_eval=1,
        n_dev=2,
        num_workers=0,
        limit=8,
        progress=False,
    )
    return cache_dir


def _randomized(model: FeatureConverter, seed: int = 0) -> FeatureConverter:
    """Random weights everywhere (the output convolution starts at zero) and random statistics."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(0.3 * torch.randn(param.shape, generator=generator, dtype=param.dtype))
    model.set_normalization(
        torch.randn(model.in_dim, generator=generator),
        0.5 + torch.rand(model.in_dim, generator=generator),
        torch.randn(model.out_dim, generator=generator) - 5.0,
        0.5 + torch.rand(model.out_dim, generator=generator),
    )
    return model


def _dense_windows(T: int, windows) -> list[tuple[np.ndarray, np.ndarray]]:
    """Dense truncated window matrices W_k (T, T) and MLPG precisions p_k (T,) (nnmnkwii's convention).

    ``p_k`` is zero on dynamic features within ``max(left, right)`` frames of either end.
    """
    edge = max(max(left, right) for left, right, _ in windows)
    out = []
    for k, (left, _, coefficients) in enumerate(windows):
        W = np.zeros((T, T))
        for t in range(T):
            for m, c in enumerate(coefficients):
                if 0 <= t + m - left < T:
                    W[t, t + m - left] = c
        p = np.ones(T)
        if k > 0:
            p[:edge] = 0.0
            p[T - edge :] = 0.0
        out.append((W, p))
    return out


def _dense_mlpg(means: np.ndarray, windows) -> np.ndarray:
    """Unit-variance MLPG of one sequence in float64 with dense matrices.

    Args:
        means: (T, K · D) window-major means.
        windows: K ``(left, right, coefficients)`` triples.

    Returns:
        (T, D) ``(Wᵀ P W)⁻¹ Wᵀ P μ`` per dimension.
    """
    T = means.shape[0]
    D = means.shape[1] // len(windows)
    A = np.zeros((T, T))
    b = np.zeros((T, D))
    for k, (W, p) in enumerate(_dense_windows(T, windows)):
        A += W.T @ (p[:, None] * W)
        b += W.T @ (p[:, None] * means[:, k * D : (k + 1) * D])
    return np.linalg.solve(A, b)


def _config(model_spec: dict) -> dict:
    return {"model": dict(model_spec), "data": {"features": dataclasses.asdict(FEATURES)}}


def _task(cache: Path, spec: dict = SMALL, **kwargs) -> MGEFeatureTask:
    kwargs.setdefault("terms", ["mge", "mse_static", "lsd_db"])
    kwargs.setdefault("frames", FRAMES)
    return MGEFeatureTask(instantiate(spec, _convert_="all"), str(cache), FEATURES, **kwargs)


def _batch(
    task: MGEFeatureTask, split: str = "train", count: int = 4, seed: int = 0
) -> dict[str, torch.Tensor]:
    dataset = task.train_dataset(split)
    return task.collate([dataset[(i % len(dataset), seed + i)] for i in range(count)])


# ------------------------------------------------------------------------------------------ model
@pytest.mark.parametrize(
    "kwargs,num_windows,receptive_field",
    [
        ({}, 3, 17),
        ({"windows": HTS_WINDOWS, "layers": 2}, 3, 9),
        ({"kernel_size": 3, "layers": 1}, 3, 3),
        ({"windows": delta_windows(1, order=1), "kernel_size": 1}, 2, 1),
    ],
)
def test_shapes_and_the_untrained_converter_predicts_the_mean_log_mel(kwargs, num_windows, receptive_field):
    model = FeatureConverter(channels=16, **kwargs).eval()
    assert model.num_windows == num_windows and model.receptive_field == receptive_field
    model.set_normalization(
        torch.zeros(20), torch.ones(20), torch.linspace(-9, -1, 80), torch.full((80,), 2.0)
    )
    features = torch.randn(3, 30, 20)
    assert model(features).shape == (3, 30, num_windows * 80)
    mel = model.infer(features)
    assert mel.shape == (3, 30, 80)
    torch.testing.assert_close(mel, torch.linspace(-9, -1, 80).expand(3, 30, 80))
    assert model.infer(features[0]).shape == (30, 80)


def test_each_output_frame_sees_exactly_its_receptive_field():
    torch.manual_seed(0)
    model = _randomized(FeatureConverter(channels=8, kernel_size=5, layers=3)).eval()
    features = torch.randn(1, 40, 20, requires_grad=True)
    model(features)[0, 20].sum().backward()
    reach = (model.receptive_field - 1) // 2  # 6 frames on each side
    seen = features.grad[0].abs().sum(dim=1) > 0
    assert seen.nonzero().flatten().tolist() == list(range(20 - reach, 20 + reach + 1))


@pytest.mark.parametrize("windows", [None, HTS_WINDOWS])
@pytest.mark.parametrize("T", [1, 7, 33])
def test_infer_is_the_float64_dense_mlpg_of_the_predicted_means(windows, T):
    model = (
        _randomized(FeatureConverter(channels=16, kernel_size=3, layers=2, windows=windows)).double().eval()
    )
    features = torch.randn(2, T, 20, dtype=torch.float64) * 3
    means = model(features).detach().numpy()
    mel = model.infer(features).numpy()
    std, mean = model.mel_std.numpy(), model.mel_mean.numpy()
    for b in range(2):
        expected = _dense_mlpg(means[b], windows or delta_windows()) * std + mean
        np.testing.assert_allclose(mel[b], expected, rtol=0, atol=1e-10)
    # float32 (the training dtype) agrees to float32 rounding
    single = model.float().infer(features.float()).double().numpy()
    np.testing.assert_allclose(single, mel, rtol=0, atol=2e-4)


def test_padded_batch_converts_each_sequence_as_if_alone():
    model = _randomized(FeatureConverter(channels=16, kernel_size=5, layers=3)).double().eval()
    lengths = [25, 9, 17]
    sequences = [torch.randn(n, 20, dtype=torch.float64) for n in lengths]
    padded = torch.full((3, 25, 20), math.nan, dtype=torch.float64)  # padding may hold anything
    for b, x in enumerate(sequences):
        padded[b, : len(x)] = x
    means = model(padded, torch.tensor(lengths))
    mel = model.infer(padded, torch.tensor(lengths))
    for b, x in enumerate(sequences):
        n = len(x)
        torch.testing.assert_close(means[b, :n], model(x[None])[0], rtol=0, atol=1e-12)
        torch.testing.assert_close(mel[b, :n], model.infer(x), rtol=0, atol=1e-10)
        assert not means[b, n:].any()
        torch.testing.assert_close(mel[b, n:], model.mel_mean.expand(25 - n, 80))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"kernel_size": 4}, "kernel_size must be odd"),
        ({"layers": 0}, "layers must be >= 1"),
        ({"dropout": 1.0}, "dropout must be in"),
        ({"windows": [[1, 1, [0.5, 0.5]]]}, "needs 3 coefficients"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FeatureConverter(**kwargs)


def test_set_normalization_checks_shapes_and_positive_std():
    model = FeatureConverter(channels=4)
    with pytest.raises(ValueError, match=r"features_mean must have shape \(20,\)"):
        model.set_normalization(torch.zeros(19), torch.ones(20), torch.zeros(80), torch.ones(80))
    with pytest.raises(ValueError, match="mel_std must be positive"):
        model.set_normalization(torch.zeros(20), torch.ones(20), torch.zeros(80), torch.zeros(80))


# ------------------------------------------------------------------------------------------ data
def test_crops_follow_the_seed_and_the_dev_split_is_whole_utterances(cache):
    task = _task(cache)
    train = task.train_dataset("train")
    uid = read_split(cache, "train")[1]
    utt = load_utterance(cache, uid)
    item = train[(1, 123)]
    start = int(np.random.default_rng(123).integers(0, utt.mel.shape[0] - FRAMES + 1))
    # exact: the crop is a slice of the cached arrays, no arithmetic
    np.testing.assert_array_equal(item["features"].numpy(), utt.features[start : start + FRAMES])
    np.testing.assert_array_equal(item["mel"].numpy(), utt.mel[start : start + FRAMES])
    assert not torch.equal(train[(1, 123)]["mel"], train[(1, 124)]["mel"])
    dev = task.train_dataset("dev")
    for index, uid in enumerate(read_split(cache, "dev")):
        utt = load_utterance(cache, uid)
        np.testing.assert_array_equal(dev[(index, 5)]["mel"].numpy(), utt.mel)
        np.testing.assert_array_equal(dev[(index, 5)]["features"].numpy(), utt.features)
    batch = task.collate([dev[(0, 0)], dev[(1, 0)]])
    lengths = [load_utterance(cache, uid).mel.shape[0] for uid in read_split(cache, "dev")]
    assert batch["lengths"].tolist() == lengths
    assert batch["mel"].shape == (2, max(lengths), 80) and batch["features"].shape == (2, max(lengths), 20)
    short = int(np.argmin(lengths))
    assert not batch["mel"][short, lengths[short] :].any()
    assert task.batch_num_samples(batch) == sum(lengths) * FEATURES.hop_length


def test_whole_utterances_are_used_when_shorter_than_the_crop(cache):
    task = _task(cache, frames=100_000)
    item = task.train_dataset("train")[(0, 9)]
    np.testing.assert_array_equal(
        item["mel"].numpy(), load_utterance(cache, read_split(cache, "train")[0]).mel
    )


# ------------------------------------------------------------------------------------------ task
def test_terms_against_an_independent_float64_computation(cache):
    torch.manual_seed(0)
    task = _task(cache, terms=list(FEATURE_TERMS))
    model = _randomized(task.model)
    stats = load_stats(cache)
    model.set_normalization(
        stats["features_mean"], stats["features_std"], stats["mel_mean"], stats["mel_std"]
    )
    model.eval()
    batch = _batch(task, "dev", count=2)
    terms = task.validation_step(model, batch)
    assert set(terms) == {"mge", "mse_static", "mse_windows", "lsd_db"}
    means = model.double()(batch["features"].double(), batch["lengths"]).detach().numpy()
    mel_mean, mel_std = stats["mel_mean"].astype(np.float64), stats["mel_std"].astype(np.float64)
    squared_mge, squared_static, squared_windows, per_frame = [], [], [], []
    for b, n in enumerate(batch["lengths"].tolist()):
        target = (batch["mel"][b, :n].double().numpy() - mel_mean) / mel_std
        generated = _dense_mlpg(means[b, :n], delta_windows())
        squared_mge.append((generated - target) ** 2)
        squared_static.append((means[b, :n, :80] - target) ** 2)
        for k, (W, p) in enumerate(_dense_windows(n, delta_windows())):
            error = (means[b, :n, 80 * k : 80 * (k + 1)] - W @ target) ** 2
            squared_windows.append(error[p > 0].ravel())
        decibels = 20 * np.log10(np.e) * (generated - target) * mel_std
        per_frame.append(np.sqrt((decibels**2).mean(axis=1)))
    np.testing.assert_allclose(float(terms["mge"]), np.concatenate(squared_mge).mean(), rtol=2e-4)
    np.testing.assert_allclose(float(terms["mse_static"]), np.concatenate(squared_static).mean(), rtol=2e-4)
    np.testing.assert_allclose(float(terms["mse_windows"]), np.concatenate(squared_windows).mean(), rtol=2e-4)
    np.testing.assert_allclose(float(terms["lsd_db"]), np.concatenate(per_frame).mean(), rtol=2e-4)


@pytest.mark.parametrize("windows", [delta_windows(), HTS_WINDOWS])
def test_natural_window_features_are_the_truncated_windows_of_each_sequence(windows):
    lengths = [12, 5, 9]
    static = torch.randn(3, 12, 4, dtype=torch.float64)
    static[1, 5:] = math.nan  # padding is ignored
    normalized = normalize_windows(windows)
    features, weight = natural_window_features(static, normalized, torch.tensor(lengths))
    assert features.shape == weight.shape == (3, 12, 12)
    for b, n in enumerate(lengths):
        for k, (W, p) in enumerate(_dense_windows(n, windows)):
            torch.testing.assert_close(
                features[b, :n, 4 * k : 4 * (k + 1)], torch.from_numpy(W @ static[b, :n].numpy())
            )
            torch.testing.assert_close(
                weight[b, :n, 4 * k : 4 * (k + 1)], torch.from_numpy(p)[:, None].expand(n, 4)
            )
        assert not weight[b, n:].any()


def test_conventional_training_learns_the_natural_dynamics(cache):
    """``mse_windows`` alone trains all window means; MLPG of natural features gives back the statics."""
    task = _task(cache, terms=["mse_windows", "mge"])
    batch = _batch(task)
    target = task.model.normalize_mel(batch["mel"])
    natural, _ = natural_window_features(target, task.model.windows, batch["lengths"])
    generated = task.model.generate(natural, batch["lengths"])
    torch.testing.assert_close(generated, target, rtol=0, atol=1e-4)


@pytest.mark.parametrize("terms", [["mge"], ["mse_static"], ["mse_windows"], ["lsd_db"], ["mge", "lsd_db"]])
def test_only_named_terms_are_computed(cache, terms):
    task = _task(cache, terms=terms)
    assert set(task.training_step(_batch(task), 1)) == set(terms)


def test_lsd_gradient_is_finite_where_the_trajectory_is_exact(cache):
    task = _task(cache, terms=["lsd_db"])  # the untrained converter generates the mean log-mel exactly
    batch = _batch(task)
    batch["mel"] = task.model.mel_mean.expand_as(batch["mel"]).clone()
    value = task.training_step(batch, 1)["lsd_db"]
    value.backward()
    assert float(value.detach()) < 1e-15
    assert all(torch.isfinite(p.grad).all() for p in task.model.parameters() if p.grad is not None)


@pytest.mark.parametrize(
    "spec,kwargs,message",
    [
        (SMALL, {"terms": ["mge", "l1"]}, "loss.weights.l1: MGEFeatureTask has no loss term 'l1'"),
        (SMALL, {"terms": []}, "loss.weights: empty"),
        (SMALL, {"frames": 0}, "loss.frames: must be >= 1 or null"),
        ({**SMALL, "out_dim": 40}, {}, "model.out_dim=40 differs from data.features.n_mels=80"),
        ({**SMALL, "in_dim": 18}, {}, "model.in_dim=18 differs from the cache's 20 features"),
        (SMALL, {"mge": {"windows": [[0, 0, [1.0]]]}}, "loss.mge.windows [[0, 0, [1.0]]] differ"),
        ({**SMALL, "windows": HTS_WINDOWS}, {"mge": MGELoss(delta_windows())}, "set model.windows"),
        (SMALL, {"mge": {"windows": [[0, 0, [1.0]]], "reduction": "max"}}, "loss.mge: reduction must be"),
    ],
)
def test_config_errors_are_one_line(cache, spec, kwargs, message):
    with pytest.raises(ConfigError) as info:
        _task(cache, spec, **kwargs)
    assert "\n" not in str(info.value) and message in str(info.value)


def test_matching_windows_from_yaml_decimals_are_accepted(cache):
    hts_yaml = [
        [0, 0, [1.0]],
        [2, 2, [-0.2, -0.1, 0.0, 0.1, 0.2]],
        [
            2,
            2,
            [
                0.2857142857142857,
                -0.14285714285714285,
                -0.2857142857142857,
                -0.14285714285714285,
                0.2857142857142857,
            ],
        ],
    ]
    task = _task(cache, {**SMALL, "windows": HTS_WINDOWS}, mge={"windows": hts_yaml})
    assert len(task.mge_loss.windows) == 3 and task.mge_loss.windows[1][:2] == (2, 2)


def test_training_reduces_the_validation_mge_and_the_checkpoint_infers(cache, tmp_path):
    torch.manual_seed(0)
    task = _task(cache, terms=["mge", "mse_static", "lsd_db"])
    dev = _batch(task, "dev", count=2)
    before = {k: float(v) for k, v in task.validation_step(task.model.eval(), dev).items()}
    lines: list[str] = []
    settings = TrainerSettings(
        out_dir=str(tmp_path / "exp"),
        max_steps=40,
        batch_size=4,
        log_every=40,
        valid_every=40,
        checkpoint_every=40,
        audio_every=0,
        ema_decay=0.9,
        progress="log",
        resume="never",
        seed=3,
    )
    trainer = Trainer(
        task,
        lambda params: torch.optim.Adam(params, lr=1e-2),
        None,
        settings,
        loss_weights={"mge": 1.0, "mse_static": 0.0, "lsd_db": 0.0},
        config=_config(SMALL),
        log=lines.append,
    )
    trainer.fit()
    after = {k: float(v) for k, v in task.validation_step(trainer.ema.model, dev).items()}
    assert before["mge"] == pytest.approx(1.0, abs=0.3)  # the mean log-mel: about unit variance
    assert after["mge"] < 0.6 * before["mge"] and after["lsd_db"] < before["lsd_db"] - 1.0
    logged = [line for line in lines if line.startswith("step 40 validation:")]
    assert logged and re.search(r"\bmge [0-9.]+ mse_static [0-9.]+ lsd_db [0-9.]+ total [0-9.]+", logged[0])

    checkpoint = tmp_path / "exp" / "checkpoints" / "last.pt"
    converter = load_feature_converter(checkpoint)
    assert not converter.training
    torch.testing.assert_close(converter.mel_std, torch.from_numpy(load_stats(cache)["mel_std"]))
    features = dev["features"][:1, : dev["lengths"][0]]
    torch.testing.assert_close(converter.infer(features), trainer.ema.model.eval().infer(features))


def test_loading_a_foreign_checkpoint_is_one_line(cache, tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_feature_converter(tmp_path / "missing.pt")
    state = {
        "model": {},
        "ema": {},
        "optimizer": {},
        "step": 1,
        "config": {"model": {"_target_": "vocoder.models.LPCNet"}},
    }
    torch.save(state, tmp_path / "lpcnet.pt")
    with pytest.raises(CheckpointError, match="holds a vocoder.models.LPCNet, not a FeatureConverter"):
        load_feature_converter(tmp_path / "lpcnet.pt")


# ------------------------------------------------------------------------------------------ recipe
def _compose(*overrides: str):
    from hydra import compose, initialize_config_dir

    from vocoder.config import CONFIG_DIR, register_resolvers

    register_resolvers()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return compose(config_name="train", overrides=["recipe=slt_mge_mel", *overrides])


@pytest.mark.parametrize("overrides", [(), ("data=sample",)])
def test_slt_mge_mel_recipe_builds_the_mge_task(cache, overrides):
    from vocoder.config import validate_train_config, without_keys

    cfg = _compose(*overrides)
    validate_train_config(cfg)
    assert cfg.name == "slt_mge_mel" and cfg.data.name == (overrides[0][5:] if overrides else "slt")
    factory = instantiate(without_keys(cfg.loss, "weights"), _partial_=True, _convert_="all")
    task = factory(model=instantiate(cfg.model, _convert_="all"), cache_dir=str(cache), features=FEATURES)
    assert isinstance(task, MGEFeatureTask) and task.terms == ("mge", "mse_static", "lsd_db")
    assert isinstance(task.mge_loss, MGELoss) and task.mge_loss.windows == (
        (0, 0, (1.0,)),
        (1, 1, (-0.5, 0.0, 0.5)),
        (1, 1, (1.0, -2.0, 1.0)),
    )
    assert task.model.out_dim == 80 and task.model.receptive_field == 17 and task.frames == 200
    assert dict(cfg.loss.weights) == {"mge": 1.0, "mse_static": 0.0, "lsd_db": 0.0}


@pytest.mark.slow
def test_vocoder_train_runs_the_recipe_on_the_sample_corpus(tmp_path):
    overrides = [
        "recipe=slt_mge_mel",
        "data=sample",
        f"data.cache_dir={tmp_path / 'cache'}",
        "data.limit=8",
        "data.splits.n_eval=1",
        "data.splits.n_dev=1",
        "data.num_workers=0",
        f"trainer.out_dir={tmp_path / 'exp'}",
        "trainer.max_steps=3",
        "trainer.valid_every=3",
        "trainer.log_every=1",
        "trainer.batch_size=2",
        "trainer.progress=log",
        "model.channels=16",
        "loss.frames=50",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "vocoder.train", *overrides],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"step 3 validation: mge [0-9.]+ mse_static [0-9.]+ lsd_db [0-9.]+", proc.stdout)
    converter = load_feature_converter(tmp_path / "exp" / "checkpoints" / "last.pt")
    assert converter.infer(torch.zeros(12, 20)).shape == (12, 80)
