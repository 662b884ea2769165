"""Pre-flight (`heavy check`), the model registry and validation before work."""

from __future__ import annotations

import pytest

from moe_companion.__main__ import main
from moe_companion.heavy import check, modular, moefication, probes, registry, runner


def test_registry_names_every_profile_model_and_counts_parameters_independently():
    torch = pytest.importorskip("torch")
    for mod, key in ((modular, "model"), (moefication, "model"), (probes, "encoder")):
        for prof in ("cpu", "paper", "smoke"):
            spec = registry.get_model(mod.PROFILES[prof][key])
            assert spec.source == {"cpu": "wheel", "paper": "hub", "smoke": "random"}[prof]
    import transformers as tf

    for name, cls in (
        ("meta-llama/Llama-2-7b-hf", tf.LlamaForCausalLM),
        ("t5-base", tf.T5ForConditionalGeneration),
        ("sentence-transformers/all-MiniLM-L6-v2", tf.BertModel),
    ):
        spec = registry.get_model(name)
        with torch.device("meta"):  # the architecture without memory: counts from transformers itself
            model = cls(registry.build_config(name))
        n = sum(p.numel() for p in model.parameters())
        assert abs(n - spec.n_params) / spec.n_params < 0.01, (name, n)
        assert model.config.num_hidden_layers == spec.n_layers if hasattr(model.config, "num_hidden_layers") else True
    with pytest.raises(ValueError, match="model must be one of"):
        registry.get_model("gpt-17")


def test_dataset_sizes_in_the_registry_match_the_wheels():
    from moe_companion.heavy import data

    split = data.load_sentiment_tweets(None, None)
    assert registry.DATASETS["tweets"].splits == {"train": len(split.train_texts), "test": len(split.test_texts)}
    assert registry.DATASETS["pydoc"].splits["chars"] == len(data.load_prose_text())


@pytest.mark.parametrize(
    "chapter, overrides, message",
    [
        ("modular_structure", {"layers": [0, 7]}, r"layers\[1\] must be < 6"),
        ("modular_structure", {"n_tokens": 6400000}, r"n_tokens \+ n_calib_tokens must be <= 433331.*n_tokens=6400000"),
        ("modular_structure", {"model": "t5-base"}, "Llama- or BERT-style"),
        ("moefication_noise", {"n_train": 100000000}, r"n_train must be <= 10866"),
        ("moefication_noise", {"ks": [20, 20]}, "ks must not repeat"),
        ("moefication_noise", {"noise_types": ["word", "word"]}, "noise_types must not repeat"),
        ("linear_probes", {"layer": 9}, r"layer must be in \[-7, 6\]"),
        ("linear_probes", {"n_train": 20000}, "n_train \\+ n_val must be <= 10866"),
        ("linear_probes", {"encoder": "bert-huge"}, "encoder must be one of"),
    ],
)
def test_parameters_are_checked_against_the_model_before_loading(chapter, overrides, message):
    with pytest.raises(ValueError, match=message):
        runner.resolve_params(chapter, "cpu", overrides)


def test_single_layer_heatmap_builds():
    pytest.importorskip("plotly")
    from moe_companion.chapters import modular_structure as chapter

    rec = {
        "layer": 0,
        "heatmap": [[1, 2], [3, 4]],
        "token_edges": [0, 1, 2],
        "feature_edges": [0, 1, 2],
        "model": "m",
        "projection": "up",
        "allocation": "uniform",
    }
    spec = chapter._heatmap_spec(
        [{**rec, "sparsity": 0.0}, {**rec, "sparsity": 0.7}], "m", "up", "uniform", "one layer", "caption"
    )
    fig = spec.static()
    assert fig.layout.sliders and len(fig.layout.sliders) == 1


def test_topk_experts_refuses_k_above_the_number_of_experts():
    torch = pytest.importorskip("torch")
    from moe_companion.heavy._moe_layers import topk_experts

    scores = torch.zeros(3, 4)
    assert topk_experts(scores, 4).shape == (3, 4)
    with pytest.raises(ValueError, match="k must be <= 4"):
        topk_experts(scores, 5)
    with pytest.raises(ValueError, match="k must be >= 1"):
        topk_experts(scores, 0)


def test_requirements_list_models_data_token_memory_disk():
    req = check.requirements("modular_structure", "paper")
    assert req["needs_cuda"] and req["needs_token"] and req["models"][0]["gated"]
    assert req["gpu_memory_gb"] > 13 and req["disk_gb"] > 13
    text = check.format_requirements(req)
    assert "meta-llama/Llama-2-7b-hf" in text and "wikitext" in text and "HF_TOKEN" in text
    assert not check.requirements("moefication_noise", "cpu")["needs_cuda"]


def test_preflight_names_every_missing_item(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setenv("MOE_COMPANION_DEVICE", "cpu")
    with pytest.raises(check.PreflightError) as err:
        check.preflight("modular_structure")
    msg = str(err.value)
    assert "CUDA" in msg and "HF_TOKEN" in msg and "meta-llama/Llama-2-7b-hf" in msg and "wikitext" in msg
    # with a GPU, a token and a filled cache the same check passes
    monkeypatch.setattr(check, "_cuda_problem", lambda: None)
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    for kind, repo in (("model", "meta-llama/Llama-2-7b-hf"), ("dataset", "wikitext")):
        snap = tmp_path / "hf" / "hub" / f"{kind}s--{repo.replace('/', '--')}" / "snapshots" / "abc"
        snap.mkdir(parents=True)
        (snap / "config.json").write_text("{}")
    assert check.preflight("modular_structure")["chapter"] == "modular_structure"


def test_check_cli_exits_non_zero_for_paper_here_and_zero_for_cpu(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MOE_COMPANION_DEVICE", "cpu")
    assert main(["heavy", "check", "moefication_noise", "--profile", "paper"]) == 1
    cap = capsys.readouterr()
    assert "t5-base" in cap.out and "CUDA" in cap.err
    assert main(["heavy", "check", "moefication_noise", "--profile", "cpu"]) == 0


@pytest.mark.heavy
def test_dry_run_of_one_chapter_with_one_layer(capsys):
    d = check.dry_run("moe_pretraining", "paper", n_layers=1, seq=16)
    assert [s.stage.split(":")[0] for s in d.stages] == ["moe", "dense_total", "dense_active"]
    assert all(s.seconds > 0 and s.peak_gb > 0 and s.gpu_paper_s > 0 for s in d.stages)
    assert d.gpu_hours > 0
    text = check.format_dry_run(d)
    assert "extrapolated paper run on one GPU" in text and "TFLOP/s" in text


def test_heavy_paper_workflow_has_a_chapter_matrix_hf_cache_and_early_checks():
    import yaml
    from conftest import ROOT

    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "heavy-paper.yml").read_text())
    job = wf["jobs"]["paper"]
    assert "chapter" in job["strategy"]["matrix"] and "HF_HOME" in job["env"]
    names = [s.get("name", "") for s in job["steps"]]
    assert names[0].startswith("Check the Hugging Face token")
    assert names.index("Pre-flight (CUDA, token, hub or cache; seconds)") < names.index(
        "Run the chapter in the paper profile"
    )
    assert any("hub downloads" in n for n in names)


@pytest.mark.parametrize(
    "name, profile", [("modular_structure", "cpu"), ("moefication_noise", "paper"), ("linear_probes", "paper")]
)
def test_dry_run_of_every_chapter_follows_its_current_parameters(name, profile):
    """Each chapter's dry run builds its configs (one block) and times one unit on the chapter's current
    parameters and unit list (modular structure in the cpu profile: its paper-size unit takes a minute
    here); pretraining: the test above."""
    d = check.dry_run(name, profile, n_layers=1, seq=16)
    assert d.stages and all(s.seconds >= 0 and s.peak_gb > 0 for s in d.stages)
    assert d.gpu_hours > 0 and "extrapolated paper run" in check.format_dry_run(d)
