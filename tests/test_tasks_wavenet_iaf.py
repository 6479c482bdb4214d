"""WaveNet teacher / IAF student training modules: mel segments, loss terms, the frozen teacher, synthesis."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from vocoder.checkpoints import CheckpointError, load_checkpoint
from vocoder.data import (
    FeatureSettings,
    MelSegments,
    load_stats,
    load_utterance,
    log_mel_frames,
    prepare_corpus,
    read_split,
)
from vocoder.dsp import log_mel_spectrogram
from vocoder.errors import ConfigError
from vocoder.inference import IAFVocoder, SynthesisError, WaveNetVocoder, load
from vocoder.losses import ModSpecLoss, discretized_mix_logistic_nll, quantize_to_levels, stft_loss
from vocoder.training import (
    IAFDistillTask,
    IAFTask,
    Trainer,
    TrainerSettings,
    WaveNetTask,
    history_frames_for,
    normalize_mel,
)

SAMPLE_ROOT = Path(__file__).resolve().parents[1] / "vocoder" / "data" / "sample" / "kathleen"
FEATURES = FeatureSettings()
HOP = FEATURES.hop_length
TEACHER = {
    "_target_": "vocoder.models.WaveNetTeacher",
    "layers": 4,
    "dilation_cycle": 4,
    "kernel_size": 2,
    "residual_channels": 8,
    "gate_channels": 16,
    "skip_channels": 8,
    "mixture_components": 2,
}
STUDENT = {
    "_target_": "vocoder.models.IAFStudent",
    "flow_layers": [2, 2],
    "dilation_cycle": 2,
    "residual_channels": 8,
    "gate_channels": 16,
}
ALL_STUDENT_TERMS = ["l1", "stft_sc", "stft_mag", "power", "modspec"]
FRAMES = 8  # scored frames per segment
MODSPEC = {"n": 16}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """The first 6 sample utterances prepared into a fresh cache (4 train, 1 dev, 1 eval)."""
    cache_dir = tmp_path_factory.mktemp("cache")
    prepare_corpus(
        SAMPLE_ROOT, cache_dir, FEATURES, n_eval=1, n_dev=1, num_workers=0, limit=6, progress=False
    )
    return cache_dir


def _model(spec: dict) -> torch.nn.Module:
    return instantiate(spec, _convert_="all")


def _batch(task, count: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    dataset = task.train_dataset("train")
    return task.collate([dataset[(i % len(dataset), seed + i)] for i in range(count)])


def _config(model_spec: dict) -> dict:
    return {"model": dict(model_spec), "data": {"features": dataclasses.asdict(FEATURES)}}


def _trainer(
    module,
    out_dir: Path,
    steps: int,
    weights: dict[str, float],
    model_spec: dict,
    lr: float = 3e-3,
    **overrides,
) -> Trainer:
    values = dict(
        batch_size=2,
        log_every=steps,
        valid_every=0,
        checkpoint_every=steps,
        audio_every=0,
        ema_decay=0.9,
        progress="log",
        resume="never",
        seed=3,
    )
    values.update(overrides)
    settings = TrainerSettings(out_dir=str(out_dir), max_steps=steps, **values)
    return Trainer(
        module,
        lambda params: torch.optim.Adam(params, lr=lr),
        None,
        settings,
        loss_weights=weights,
        config=_config(model_spec),
        log=lambda _line: None,
    )


@pytest.fixture(scope="module")
def teacher_checkpoint(cache, tmp_path_factory) -> Path:
    """A tiny WaveNet teacher trained for 30 steps by the real trainer (narrower than a new student)."""
    torch.manual_seed(11)
    task = WaveNetTask(_model(TEACHER), str(cache), FEATURES, frames=FRAMES, example_seconds=0.0)
    out = tmp_path_factory.mktemp("teacher")
    _trainer(task, out, 30, {"nll": 1.0}, TEACHER, lr=1e-2, valid_every=30).fit()
    return out / "checkpoints" / "last.pt"


def _descend(task, steps: int = 20, lr: float = 3e-3) -> tuple[dict[str, float], dict[str, float]]:
    """Adam steps on one fixed batch; the terms of the first and of the last step."""
    torch.manual_seed(5)
    batch = _batch(task)
    optimizer = torch.optim.Adam(list(task.trainable_parameters()), lr=lr)
    task.train()
    history = []
    for step in range(steps):
        terms = task.training_step(batch, step)
        optimizer.zero_grad(set_to_none=True)
        sum(terms.values()).backward()
        optimizer.step()
        history.append({name: float(value.detach()) for name, value in terms.items()})
    return history[0], history[-1]


# ------------------------------------------------------------------------------------------ data
@pytest.mark.parametrize("history", [0, 3])
def test_mel_segments_align_mel_and_audio_with_the_cache(cache, history):
    utterances = [load_utterance(cache, uid) for uid in read_split(cache, "train")]
    dataset = MelSegments(
        utterances, frames=FRAMES, hop_length=HOP, history=history, silence_mel=math.log(FEATURES.mel_floor)
    )
    utt = dataset.utterances[1]
    for start in (history + 5, utt.mel.shape[0] - FRAMES):
        item = dataset.segment(1, start)
        assert item["mel"].shape == (FEATURES.n_mels, history + FRAMES)
        assert item["audio"].shape == ((history + FRAMES) * HOP,)
        np.testing.assert_array_equal(item["mel"].numpy(), utt.mel[start - history : start + FRAMES].T)
        np.testing.assert_array_equal(
            item["audio"].numpy(), utt.audio[(start - history) * HOP : (start + FRAMES) * HOP]
        )
    # the crop seed alone decides the segment
    np.testing.assert_array_equal(dataset[(2, 77)]["audio"].numpy(), dataset[(2, 77)]["audio"].numpy())
    assert not torch.equal(dataset[(2, 77)]["audio"], dataset[(2, 78)]["audio"])


def test_mel_segments_pad_the_past_with_silence(cache):
    utt = load_utterance(cache, read_split(cache, "train")[0])
    dataset = MelSegments([utt], frames=FRAMES, hop_length=HOP, history=4, silence_mel=math.log(1e-5))
    item = dataset.segment(0, 1)  # 3 frames before the utterance start
    np.testing.assert_array_equal(
        item["mel"][:, :3].numpy(), np.full((FEATURES.n_mels, 3), np.float32(math.log(1e-5)))
    )
    np.testing.assert_array_equal(item["mel"][:, 3:].numpy(), utt.mel[: 1 + FRAMES].T)
    np.testing.assert_array_equal(item["audio"][: 3 * HOP].numpy(), np.zeros(3 * HOP, np.float32))
    np.testing.assert_array_equal(item["audio"][3 * HOP :].numpy(), utt.audio[: (1 + FRAMES) * HOP])
    with pytest.raises(IndexError):
        dataset.segment(0, utt.mel.shape[0] - FRAMES + 1)


def test_log_mel_frames_is_the_cache_analysis(cache):
    utt = load_utterance(cache, read_split(cache, "dev")[0])
    mel = log_mel_frames(torch.from_numpy(utt.audio), FEATURES).numpy()
    np.testing.assert_allclose(mel, utt.mel, rtol=0, atol=1e-5)
    # silence analyzes to the floor that pads segments
    silent = log_mel_frames(torch.zeros(4 * HOP), FEATURES)
    torch.testing.assert_close(silent, torch.full((4, FEATURES.n_mels), math.log(FEATURES.mel_floor)))


@pytest.mark.parametrize(
    "receptive_field,expected", [(1, 0), (2, 1), (161, 1), (162, 2), (1021, 7), (1531, 10)]
)
def test_history_frames_cover_the_receptive_field(receptive_field, expected):
    assert history_frames_for(receptive_field, 160) == expected


def test_normalize_mel_matches_numpy():
    rng = np.random.default_rng(0)
    mel, mean, std = rng.normal(size=(2, 5, 7)), rng.normal(size=5), rng.uniform(0.5, 2, size=5)
    got = normalize_mel(torch.from_numpy(mel), torch.from_numpy(mean), torch.from_numpy(std)).numpy()
    np.testing.assert_allclose(got, (mel - mean[None, :, None]) / std[None, :, None], rtol=1e-12)


# ------------------------------------------------------------------------------------------ teacher
def test_wavenet_nll_scores_the_segment_after_its_history(cache):
    torch.manual_seed(0)
    model = _model(TEACHER)
    task = WaveNetTask(model, str(cache), FEATURES, frames=FRAMES)
    assert task.history_frames == history_frames_for(model.receptive_field, HOP) == 1
    batch = _batch(task)
    terms = task.validation_step(model, batch)
    assert set(terms) == {"nll"}
    stats = load_stats(cache)
    mel = (batch["mel"].double() - torch.from_numpy(stats["mel_mean"]).double()[:, None]) / torch.from_numpy(
        stats["mel_std"]
    ).double()[:, None]
    target = quantize_to_levels(batch["audio"].double(), 16)
    reference_model = _model(TEACHER).double()
    reference_model.load_state_dict(model.state_dict())
    params = reference_model.eval()(torch.nn.functional.pad(target, (1, -1)), mel)
    per_sample = discretized_mix_logistic_nll(params, target, 16, reduction="none")
    torch.testing.assert_close(terms["nll"].double(), per_sample[:, HOP:].mean(), rtol=1e-5, atol=0)
    assert task.batch_num_samples(batch) == 4 * FRAMES * HOP


def test_wavenet_task_learns(cache):
    torch.manual_seed(0)
    first, last = _descend(WaveNetTask(_model(TEACHER), str(cache), FEATURES, frames=FRAMES))
    assert last["nll"] < first["nll"] - 0.5


def test_wavenet_examples_are_generated_from_dev_mel(cache):
    torch.manual_seed(0)
    task = WaveNetTask(_model(TEACHER), str(cache), FEATURES, frames=FRAMES, example_seconds=0.02)
    (example,) = task.synthesize_examples(task.model.eval(), 1)
    assert example.name == read_split(cache, "dev")[0]
    assert example.audio.shape == example.reference.shape == (2 * HOP,) and np.isfinite(example.audio).all()
    assert task.synthesize_examples(task.model, 0) == []


# ------------------------------------------------------------------------------------------ student
@pytest.mark.parametrize("terms", [["l1"], ["stft_mag"], ["power", "modspec"], ALL_STUDENT_TERMS])
def test_iaf_task_computes_only_weighted_terms(cache, terms):
    torch.manual_seed(0)
    task = IAFTask(_model(STUDENT), str(cache), FEATURES, terms=terms, frames=FRAMES, modspec=MODSPEC)
    assert set(task.training_step(_batch(task), 1)) == set(terms)
    assert (task.stft_loss is None) == (not {"stft_sc", "stft_mag"} & set(terms))
    assert (task.power_loss is None) == ("power" not in terms)
    assert (task.modspec_loss is None) == ("modspec" not in terms)


def test_iaf_terms_against_independent_computation(cache):
    torch.manual_seed(0)
    model = _model(STUDENT)
    task = IAFTask(
        model,
        str(cache),
        FEATURES,
        terms=["l1", "stft_sc", "stft_mag", "modspec"],
        frames=FRAMES,
        history_frames=2,
        modspec=MODSPEC,
    )
    batch = _batch(task)
    torch.manual_seed(42)
    terms = task.validation_step(model, batch)
    torch.manual_seed(42)
    x, _, _ = task.student_sample(model, batch)  # the same noise
    generated, natural = x[:, 2 * HOP :].double(), batch["audio"][:, 2 * HOP :].double()
    torch.testing.assert_close(terms["l1"].double(), (generated - natural).abs().mean(), rtol=1e-5, atol=0)
    convergence, magnitude = stft_loss(generated, natural)
    torch.testing.assert_close(terms["stft_sc"].double(), convergence, rtol=1e-4, atol=0)
    torch.testing.assert_close(terms["stft_mag"].double(), magnitude, rtol=1e-4, atol=0)

    def cache_mel(wave):  # the cache's analysis, spelled out
        mel = log_mel_spectrogram(wave, 16000, 1024, 160, 640, 80, 0.0, 8000.0, floor=1e-5, center=True)
        return mel[:, :, :FRAMES].transpose(1, 2)

    expected = ModSpecLoss(n=16)(cache_mel(generated), cache_mel(natural))
    torch.testing.assert_close(terms["modspec"].double(), expected, rtol=1e-3, atol=0)


def test_iaf_task_learns_every_term(cache):
    torch.manual_seed(0)
    task = IAFTask(
        _model(STUDENT), str(cache), FEATURES, terms=ALL_STUDENT_TERMS, frames=FRAMES, modspec=MODSPEC
    )
    first, last = _descend(task, lr=1e-2)
    for name in ALL_STUDENT_TERMS:
        assert last[name] < 0.8 * first[name], name


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"terms": ["l1", "mse"]}, "loss.weights.mse: IAFTask has no loss term 'mse'"),
        ({"terms": []}, "loss.weights: empty"),
        ({"terms": ["modspec"], "modspec": {"n": 4}}, "loss.modspec.n=4 is shorter than loss.frames=8"),
        ({"terms": ["stft_sc"], "stft": {"resolution": [[512, 128, 512]]}}, "loss.stft: "),
        ({"terms": ["power"], "power": {"nfft": 512}}, "loss.power: "),
        ({"frames": 0}, "loss.frames: must be >= 1, got 0"),
        ({"history_frames": -1}, "loss.history_frames: must be >= 0 or null, got -1"),
    ],
)
def test_iaf_task_config_errors_are_one_line(cache, kwargs, message):
    with pytest.raises(ConfigError) as info:
        IAFTask(_model(STUDENT), str(cache), FEATURES, **{"frames": FRAMES, "terms": ["l1"], **kwargs})
    assert "\n" not in str(info.value) and message in str(info.value)


# ------------------------------------------------------------------------------------------ distillation
def _distill_task(cache, teacher_checkpoint, terms=("kl", "power"), **kwargs) -> IAFDistillTask:
    return IAFDistillTask(
        _model(STUDENT),
        str(cache),
        FEATURES,
        teacher_checkpoint=str(teacher_checkpoint),
        terms=list(terms),
        frames=FRAMES,
        modspec=MODSPEC,
        **kwargs,
    )


def test_distillation_keeps_the_teacher_frozen_and_out_of_the_trained_state(
    cache, teacher_checkpoint, tmp_path
):
    teacher_weights = load_checkpoint(teacher_checkpoint)["ema"]
    torch.manual_seed(1)
    task = _distill_task(cache, teacher_checkpoint, terms=("kl", "power", "modspec"))
    trainer = _trainer(
        task,
        tmp_path,
        4,
        {"kl": 1.0, "power": 1.0, "modspec": 0.01},
        STUDENT,
        audio_every=4,
        audio_examples=1,
        valid_every=2,
    )
    trainer.fit()
    assert trainer.step == 4
    # bit-identical teacher weights, in eval mode and without gradients after trainer.module.train()
    for name, value in task.teacher.state_dict().items():
        assert torch.equal(value, teacher_weights[name]), name
    assert not task.teacher.training and all(not m.training for m in task.teacher.modules())
    assert task.model.training
    teacher_params = list(task.teacher.parameters())
    assert all(not p.requires_grad and p.grad is None for p in teacher_params)
    # the optimizer holds exactly the student's parameters
    optimized = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert optimized == {id(p) for p in task.model.parameters()}
    assert not optimized & {id(p) for p in teacher_params}
    # gradients of the last step reached every student parameter
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in task.model.parameters())
    # checkpoints hold the student only
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    student_keys = set(task.model.state_dict())
    assert set(state["model"]) == student_keys and set(state["ema"]) == student_keys
    assert not any(key.startswith("teacher") for key in [*state["model"], *state["ema"]])
    torch.testing.assert_close(state["module"]["mel_mean"], torch.from_numpy(load_stats(cache)["mel_mean"]))


def test_kl_gradient_flows_through_the_teacher_into_the_student(cache, teacher_checkpoint):
    torch.manual_seed(2)
    task = _distill_task(cache, teacher_checkpoint, terms=("kl",))
    task.train()
    batch = _batch(task)
    x, mu, log_s = task.student_sample(task.model, batch)
    teacher_mel = normalize_mel(batch["mel"], task.teacher_mel_mean, task.teacher_mel_std)
    cross_entropy = -task.teacher.mixture_params(x, teacher_mel).sum()
    (through_teacher,) = torch.autograd.grad(cross_entropy, x)
    assert bool(through_teacher.abs().sum() > 0)
    task.training_step(batch, 1)["kl"].backward()
    assert all(p.grad is None for p in task.teacher.parameters())
    assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in task.model.parameters())


def test_distill_task_learns(cache, teacher_checkpoint):
    torch.manual_seed(0)
    first, last = _descend(_distill_task(cache, teacher_checkpoint), lr=1e-2)
    assert last["kl"] < 0.2 * first["kl"] and last["power"] < 1e-3 * first["power"]


def test_teacher_is_fed_its_own_statistics(cache, teacher_checkpoint):
    task = _distill_task(cache, teacher_checkpoint)
    module_state = load_checkpoint(teacher_checkpoint)["module"]
    torch.testing.assert_close(task.teacher_mel_mean, module_state["mel_mean"])
    torch.testing.assert_close(task.teacher_mel_std, module_state["mel_std"])
    assert "teacher_mel_mean" not in task.state_dict() and "mel_mean" not in task.model.state_dict()


@pytest.mark.parametrize("kind", ["missing", "corrupt", "student", "unset"])
def test_distill_task_rejects_a_bad_teacher_checkpoint_in_one_line(cache, tmp_path, kind):
    if kind == "missing":
        path, error, message = tmp_path / "nope.pt", CheckpointError, "nope.pt: checkpoint not found"
    elif kind == "corrupt":
        path, error, message = tmp_path / "bad.pt", CheckpointError, "not a readable checkpoint"
        path.write_bytes(b"not a checkpoint")
    elif kind == "student":
        torch.manual_seed(0)
        student_task = IAFTask(_model(STUDENT), str(cache), FEATURES, terms=["l1"], frames=FRAMES)
        _trainer(student_task, tmp_path / "student", 1, {"l1": 1.0}, STUDENT).fit()
        path, error, message = (
            tmp_path / "student" / "checkpoints" / "last.pt",
            CheckpointError,
            "not a WaveNet teacher",
        )
    else:
        path, error, message = None, ConfigError, "loss.teacher_checkpoint: not set"
    with pytest.raises(error) as info:
        IAFDistillTask(
            _model(STUDENT),
            str(cache),
            FEATURES,
            teacher_checkpoint=None if path is None else str(path),
            frames=FRAMES,
        )
    text = str(info.value)
    assert "\n" not in text and message in text and text.startswith("loss.teacher_checkpoint")


def test_distill_task_rejects_a_teacher_of_other_mel_settings(cache, teacher_checkpoint):
    other = dataclasses.replace(FEATURES, n_fft=512, win_length=512)
    with pytest.raises(CheckpointError, match="other mel features .*n_fft 1024 vs 512"):
        IAFDistillTask(
            _model(STUDENT), str(cache), other, teacher_checkpoint=str(teacher_checkpoint), frames=FRAMES
        )


# ------------------------------------------------------------------------------------------ synthesis
def test_wavenet_checkpoint_synthesizes(cache, teacher_checkpoint):
    vocoder = load(teacher_checkpoint)
    assert isinstance(vocoder, WaveNetVocoder) and not vocoder.batched and vocoder.conditioning_key == "mel"
    utt = load_utterance(cache, read_split(cache, "eval")[0])
    # copy synthesis analyzes like the cache: trimmed to whole frames, then the same log-mel
    extended = np.concatenate([utt.audio, np.full(17, 0.5, np.float32)])
    np.testing.assert_allclose(vocoder.analyze(extended), utt.mel, rtol=0, atol=1e-5)
    waves = vocoder.synthesize([utt.mel[:3], utt.mel[5:7]], seed=1)
    assert [w.shape for w in waves] == [(3 * HOP,), (2 * HOP,)]
    assert all(w.dtype == np.float32 and np.isfinite(w).all() and np.abs(w).max() <= 1 for w in waves)
    np.testing.assert_array_equal(vocoder.synthesize([utt.mel[:3]], seed=1)[0], waves[0])


def test_iaf_checkpoint_synthesizes_batched_utterances(cache, tmp_path):
    torch.manual_seed(0)
    task = IAFTask(_model(STUDENT), str(cache), FEATURES, terms=["l1", "stft_mag"], frames=FRAMES)
    _trainer(task, tmp_path, 2, {"l1": 1.0, "stft_mag": 1.0}, STUDENT).fit()
    vocoder = load(tmp_path / "checkpoints" / "last.pt", threads=2)
    assert isinstance(vocoder, IAFVocoder) and vocoder.batched and vocoder.threads == 2
    mels = [load_utterance(cache, uid).mel for uid in read_split(cache, "train")[:3]]
    assert len({m.shape[0] for m in mels}) == 3
    waves = vocoder.synthesize(mels, seed=4)
    assert [w.shape for w in waves] == [(m.shape[0] * HOP,) for m in mels]
    assert all(np.isfinite(w).all() for w in waves)
    assert torch.get_num_threads() == 1  # the synthesis thread count was restored
    # one utterance alone: the student's own synthesis of the normalized mel with the same noise seed
    stats = load_stats(cache)
    normalized = (mels[0].T - stats["mel_mean"][:, None]) / stats["mel_std"][:, None]
    expected = vocoder.model.synthesize(torch.from_numpy(normalized)[None].float(), seed=4)[0].numpy()
    np.testing.assert_allclose(vocoder.synthesize([mels[0]], seed=4)[0], expected, rtol=1e-6, atol=1e-7)


def test_mel_checkpoint_without_statistics_is_rejected(teacher_checkpoint, tmp_path):
    state = load_checkpoint(teacher_checkpoint)
    state["module"] = {}
    path = tmp_path / "nostats.pt"
    torch.save(state, path)
    with pytest.raises(SynthesisError, match="no mel statistics") as info:
        load(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_resume_restores_the_training_statistics(cache):
    task = WaveNetTask(_model(TEACHER), str(cache), FEATURES, frames=FRAMES)
    saved = {name: value + 1.0 for name, value in task.extra_state().items()}
    task.load_extra_state(saved)
    torch.testing.assert_close(task.mel_mean, saved["mel_mean"])
    torch.testing.assert_close(task.mel_std, saved["mel_std"])


# ------------------------------------------------------------------------------------------ recipes
def _recipe_module(recipe: str, cache: Path, *overrides: str):
    """A recipe's training module built as ``vocoder-train`` builds it (Hydra partial + injected objects)."""
    from hydra import compose, initialize_config_dir

    from vocoder.config import CONFIG_DIR, register_resolvers, validate_train_config, without_keys

    register_resolvers()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = compose(config_name="train", overrides=[f"recipe={recipe}", *overrides])
    validate_train_config(cfg)
    factory = instantiate(without_keys(cfg.loss, "weights"), _partial_=True, _convert_="all")
    return cfg, factory(
        model=instantiate(cfg.model, _convert_="all"), cache_dir=str(cache), features=FEATURES
    )


def test_slt_iaf_recipe_trains_on_log_mel_and_stft_without_modspec_or_l1(cache):
    cfg, task = _recipe_module("slt_iaf", cache)
    assert isinstance(task, IAFTask) and task.terms == tuple(cfg.loss.weights) == (
        "mel_l1",
        "stft_sc",
        "stft_mag",
    )
    assert task.modspec_loss is None and task.power_loss is None
    assert task.stft_loss.floor == 1e-3 and task.stft_loss.convergence == "batch"
    assert (
        task.term_weights == {"mel_l1": 1.0, "stft_sc": 1.0, "stft_mag": 1.0} and task.grad_share_every == 100
    )
    assert task.output_rms is not None and task.model.cond_lookahead_frames == 3
    # the student's receptive field per flow is over one pitch period: 128 samples
    assert [flow.receptive_field for flow in task.model.flows] == [128] * 4
    # ModSpec and waveform L1 stay available as terms
    _, task = _recipe_module(
        "slt_iaf", cache, "+loss.weights.power=1e-4", "+loss.weights.modspec=0.1", "+loss.weights.l1=1.0"
    )
    assert task.terms == ("mel_l1", "stft_sc", "stft_mag", "power", "modspec", "l1")
    assert isinstance(task.modspec_loss, ModSpecLoss) and task.modspec_loss.n == 64


def test_slt_iaf_distill_recipe_needs_a_teacher_checkpoint(cache, teacher_checkpoint):
    with pytest.raises(
        ConfigError, match="^loss.teacher_checkpoint: not set; .*exp/slt_wavenet/checkpoints/last.pt"
    ):
        _recipe_module("slt_iaf_distill", cache)
    _, task = _recipe_module("slt_iaf_distill", cache, f"loss.teacher_checkpoint={teacher_checkpoint}")
    assert isinstance(task, IAFDistillTask) and task.terms == ("kl", "power", "stft_frame")
    assert task.kl_loss.teacher_density == "continuous" and task.kl_loss.bits == 16
    assert task.kl_loss.num_samples == 4 and task.frame_loss is not None


def test_slt_wavenet_recipe_builds_the_teacher_task(cache):
    cfg, task = _recipe_module("slt_wavenet", cache)
    assert isinstance(task, WaveNetTask) and cfg.model.layers == 16
    assert task.model.log_scale_min == -16.0  # a floor suited to 16-bit audio (not PixelCNN++'s 8-bit -7)
    assert task.history_frames == history_frames_for(task.model.receptive_field, HOP) == 7


# ------------------------------------------------------------------------------------------ issue 13
CENTRED_STUDENT = {**STUDENT, "upsample": "centred", "upsample_context": 2}


def test_mel_segments_carry_look_ahead_frames_padded_with_silence(cache):
    utt = load_utterance(cache, read_split(cache, "train")[0])
    dataset = MelSegments(
        [utt], frames=FRAMES, hop_length=HOP, history=2, silence_mel=math.log(1e-5), lookahead=3
    )
    total = utt.mel.shape[0]
    inside = dataset.segment(0, 5)
    np.testing.assert_array_equal(inside["mel"].numpy(), utt.mel[3 : 5 + FRAMES + 3].T)
    np.testing.assert_array_equal(inside["audio"].numpy(), utt.audio[3 * HOP : (5 + FRAMES + 3) * HOP])
    last = dataset.segment(0, total - FRAMES)  # 3 frames after the end
    assert last["mel"].shape == (FEATURES.n_mels, 2 + FRAMES + 3) and last["audio"].shape == (
        (2 + FRAMES + 3) * HOP,
    )
    np.testing.assert_array_equal(
        last["mel"][:, -3:].numpy(), np.full((FEATURES.n_mels, 3), np.float32(math.log(1e-5)))
    )
    np.testing.assert_array_equal(last["audio"][-3 * HOP :].numpy(), np.zeros(3 * HOP, np.float32))
    np.testing.assert_array_equal(last["audio"][: -3 * HOP].numpy(), utt.audio[(total - FRAMES - 2) * HOP :])


def test_iaf_task_scores_the_frames_between_history_and_look_ahead(cache):
    torch.manual_seed(0)
    task = IAFTask(
        _model(CENTRED_STUDENT), str(cache), FEATURES, terms=["mel_l1"], frames=FRAMES, history_frames=2
    )
    batch = _batch(task)
    assert task.lookahead_frames == 3 and batch["mel"].shape[-1] == 2 + FRAMES + 3
    assert task.scored == slice(2 * HOP, (2 + FRAMES) * HOP)
    torch.manual_seed(42)
    terms = task.validation_step(task.model, batch)
    torch.manual_seed(42)
    x, _, _ = task.student_sample(task.model, batch)
    generated, natural = (
        x[:, 2 * HOP : (2 + FRAMES) * HOP].double(),
        batch["audio"][:, 2 * HOP : (2 + FRAMES) * HOP].double(),
    )

    def cache_mel(wave):  # the cache's analysis, spelled out
        mel = log_mel_spectrogram(wave, 16000, 1024, 160, 640, 80, 0.0, 8000.0, floor=1e-5, center=True)
        return mel[:, :, :FRAMES]

    expected = (cache_mel(generated) - cache_mel(natural)).abs().mean()
    torch.testing.assert_close(terms["mel_l1"].double(), expected, rtol=1e-4, atol=0)


def test_student_output_starts_within_6_db_of_the_data(cache):
    torch.manual_seed(0)
    task = IAFTask(
        _model(CENTRED_STUDENT), str(cache), FEATURES, terms=["mel_l1"], frames=FRAMES, output_rms="data"
    )
    audio = np.concatenate([load_utterance(cache, uid).audio for uid in read_split(cache, "train")]).astype(
        np.float64
    )
    data_rms = float(np.sqrt(np.mean(audio**2)))
    assert task.output_rms == pytest.approx(data_rms, rel=1e-6)
    x, _, _ = task.student_sample(task.model, _batch(task, count=16))
    level_db = 20 * math.log10(float(x.detach().double().square().mean().sqrt()) / data_rms)
    assert abs(level_db) < 6.0
    # without it the untrained student is Logistic(0, 1) noise, ~35 dB too loud
    loud = IAFTask(_model(CENTRED_STUDENT), str(cache), FEATURES, terms=["mel_l1"], frames=FRAMES)
    x, _, _ = loud.student_sample(loud.model, _batch(loud, count=16))
    assert 20 * math.log10(float(x.detach().double().square().mean().sqrt()) / data_rms) > 25.0
    with pytest.raises(ConfigError, match="loss.output_rms"):
        IAFTask(_model(STUDENT), str(cache), FEATURES, terms=["l1"], frames=FRAMES, output_rms="loud")


def test_gradient_shares_are_each_weighted_terms_gradient_norm(cache):
    torch.manual_seed(0)
    weights = {"mel_l1": 2.0, "stft_sc": 1.0, "stft_mag": 0.5}
    task = IAFTask(
        _model(CENTRED_STUDENT),
        str(cache),
        FEATURES,
        terms=list(weights),
        frames=FRAMES,
        output_rms="data",
        grad_share_every=10,
        term_weights=weights,
    )
    task.train()
    batch = _batch(task)
    terms = task.training_step(batch, 1)  # step 1: shares computed
    scalars = task.after_optimizer_step(1)
    params = list(task.trainable_parameters())
    for name, weight in weights.items():
        grads = torch.autograd.grad(weight * terms[name], params, retain_graph=True, allow_unused=True)
        norm = math.sqrt(sum(float(g.double().square().sum()) for g in grads if g is not None))
        assert scalars[f"grad_norm/{name}"] == pytest.approx(norm, rel=1e-5)
    assert sum(scalars[f"grad_share/{name}"] for name in weights) == pytest.approx(1.0, rel=1e-9)
    assert task.after_optimizer_step(1) == {}  # handed over once
    task.training_step(batch, 5)
    assert task.after_optimizer_step(5) == {}  # not a multiple of grad_share_every
    task.training_step(batch, 10)
    assert set(task.after_optimizer_step(10)) == {
        f"grad_{kind}/{name}" for kind in ("norm", "share") for name in weights
    }


@pytest.fixture(scope="module")
def wide_teacher_checkpoint(cache, tmp_path_factory) -> Path:
    """A teacher whose receptive field, 256 samples, exceeds a frame and the student's 9 samples."""
    spec = {**TEACHER, "layers": 8, "dilation_cycle": 8}
    torch.manual_seed(12)
    task = WaveNetTask(_model(spec), str(cache), FEATURES, frames=FRAMES, example_seconds=0.0)
    out = tmp_path_factory.mktemp("wide_teacher")
    _trainer(task, out, 1, {"nll": 1.0}, spec, lr=1e-3).fit()
    return out / "checkpoints" / "last.pt"


def test_teacher_context_covers_its_receptive_field_of_exact_student_samples(cache, wide_teacher_checkpoint):
    torch.manual_seed(0)
    task = _distill_task(cache, wide_teacher_checkpoint, terms=("kl",))
    teacher_field, student_field = task.teacher.receptive_field, task.model.receptive_field
    assert (teacher_field, student_field) == (256, 9)
    # the old history (the student's field: 1 frame) left the teacher's window partly outside the segment
    assert history_frames_for(student_field, HOP) * HOP < teacher_field - 1
    assert task.history_samples >= (teacher_field - 1) + (student_field - 1)
    student, teacher = task.model.double(), task.teacher.module.double()
    with torch.no_grad():
        for p in student.parameters():
            p.normal_(std=0.05)  # small: log s stays near 0, so x moves with z (untrained: the identity)
        for p in teacher.parameters():
            p.normal_(std=0.3)
    batch = _batch(task, count=2)
    start = task.scored.start
    mel = task.normalize(batch["mel"]).double()
    teacher_mel = normalize_mel(batch["mel"], task.teacher_mel_mean, task.teacher_mel_std).double()
    z = torch.rand(batch["audio"].shape, dtype=torch.float64).clamp(1e-6, 1 - 1e-6).logit()

    def first_scored_teacher_params(noise):
        x = student(noise, mel)[0]
        return x, teacher.mixture_params(x, teacher_mel)[:, :, start]

    with torch.no_grad():
        x, params = first_scored_teacher_params(z)
        # noise beyond the student's field of the first scored sample, inside the teacher's window
        changed = z.clone()
        changed[:, start - 200] += 1.0
        x_changed, params_changed = first_scored_teacher_params(changed)
        assert (x_changed - x)[:, start - 200].abs().min() > 0.1
        # x[t] reads z[t - 8 … t]: the first scored sample's own field is unchanged
        assert torch.equal(x_changed[:, start - 191 :], x[:, start - 191 :])
        assert (params_changed - params).abs().max() > 1e-12  # the teacher's score of it moved
        # noise whose samples lie outside the teacher's window leaves the score exactly as it was
        far = z.clone()
        far[:, start - 300] += 1.0
        assert torch.equal(first_scored_teacher_params(far)[1], params)
