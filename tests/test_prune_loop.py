"""The pruning loop: budgets, undo and backoff, the baseline, determinism and resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from nnjoules.errors import InputError
from nnjoules.prune import PruneConfig, Pruner, RestoreConfig, TrainConfig, prune
from nnjoules.prune.finetune import evaluate, train
from nnjoules.prune.masks import nonzero_counts, prunable_layers, weight_of
from prune_helpers import tiny_model, tiny_task

FAST = PruneConfig(rounds=3, rate=0.4, density_images=8,
                   restore=RestoreConfig(samples=96, positions=8))
FT = TrainConfig(epochs=0.5, lr=0.05)


@pytest.fixture(scope="module")
def trained() -> nn.Module:
    model = tiny_model()
    train(model, tiny_task(600), TrainConfig(epochs=3, lr=0.1), seed=0)
    return model


def run(model: nn.Module, **kwargs: object) -> object:
    data = tiny_task(600)
    val = tiny_task(300, seed=1)
    options: dict[str, object] = {"config": FAST, "finetune": FT, "reference": "given"}
    options.update(kwargs)
    return prune(model, data, val, **options)  # type: ignore[arg-type]


def clone(model: nn.Module) -> nn.Module:
    from nnjoules.prune.masks import clone as clone_masked

    return clone_masked(model)


def test_energy_aware_run_meets_budget_and_records_history(trained: nn.Module) -> None:
    result = run(clone(trained), method="energy-aware", accuracy_drop=0.05)
    assert result.history[0].round == 0 and result.history[0].density == 1.0
    assert len(result.history) == 4 and result.stop_reason == "round limit"
    final = result.final
    assert final.accuracy >= result.accuracy_floor
    assert final.energy < result.dense.energy and final.nonzero_weights < final.weights
    assert final.nonskipped_macs < result.dense.nonskipped_macs
    assert [layer.name for layer in final.layers] == ["features.0", "features.3", "classifier"]
    assert all(r.layers[0].output_error is not None for r in result.history[1:] if r.accepted)
    counts = nonzero_counts(result.model)
    assert sum(c[0] for c in counts.values()) == final.nonzero_weights
    assert result.to_dict()["final"]["energy_reduction"] == pytest.approx(
        result.energy_reduction())


@pytest.mark.parametrize("allocation", ["energy", "saliency"])
def test_layers_are_pruned_in_energy_order(trained: nn.Module, allocation: str) -> None:
    model = clone(trained)
    config = PruneConfig(**{**FAST.to_dict(), "restore": FAST.restore,
                            "allocation": allocation})
    pruner = Pruner(model, tiny_task(100), evaluate=lambda m: 1.0, finetune=lambda m: None,
                    config=config)
    report = pruner.meter.report(model)
    order, keep = pruner._keep_counts(0.4)
    energy = report.by_layer()
    assert order == sorted(energy, key=lambda n: -energy[n])
    floor = pruner.meter.floor_report(model, report).by_layer()
    removable = {n: energy[n] - floor[n] for n in energy}
    counts = nonzero_counts(model)
    if allocation == "energy":  # the layer with most removable energy loses 40%
        top = max(removable, key=lambda n: removable[n])
        assert keep[top] == round(0.6 * counts[top][0])
        for name in keep:
            share = removable[name] / removable[top]
            assert keep[name] == round(counts[name][0] * (1 - 0.4 * share))
        return
    removed = sum(removable[n] / counts[n][0] * (counts[n][0] - keep[n]) for n in keep)
    largest = max(removable[n] / counts[n][0] for n in keep)
    assert 0.4 * sum(removable.values()) <= removed <= 0.4 * sum(removable.values()) + largest


def probe_config(**changes: object) -> PruneConfig:
    return PruneConfig(**{**FAST.to_dict(), "restore": FAST.restore, "allocation": "probe",
                          "probe_images": 128, **changes})


def test_probe_rule_unlimited_budget_takes_every_first_attempt(trained: nn.Module) -> None:
    """With a budget nothing can break, every layer loses ``rate`` of its non-zeros on the
    first attempt, and its rate then grows by 1/backoff up to ``max_rate``."""
    model = clone(trained)
    pruner = Pruner(model, tiny_task(400), evaluate=lambda m: 1.0, finetune=lambda m: None,
                    config=probe_config(probe_drop=1.0, max_rate=0.7))
    before = nonzero_counts(model)
    record = pruner.step()
    after = nonzero_counts(model)
    for name, (nonzero, _total) in before.items():
        assert after[name][0] == round(nonzero * 0.6)
        assert pruner.layer_rates[name] == pytest.approx(0.7)  # 0.4 / 0.5, capped
    assert all(layer.output_error is not None for layer in record.layers)
    pruner.step()
    for name, (nonzero, _total) in after.items():
        assert nonzero_counts(model)[name][0] == round(nonzero * 0.3)


def test_probe_rule_keeps_the_probe_predictions(trained: nn.Module) -> None:
    """With ``probe_drop=0`` a round may not change the class of any probe image (before
    fine-tuning); layers whose attempts all fail are left as they were, at a lower rate."""
    from nnjoules.prune.loop import _predictions

    model = clone(trained)
    config = probe_config(probe_drop=0.0, rate=0.95, max_rate=0.99, min_density=0.0,
                          probe_tries=2)
    pruner = Pruner(model, tiny_task(400), evaluate=lambda m: 1.0, finetune=lambda m: None,
                    config=config)
    assert len(pruner.probe) == 128 and len(pruner.calibration) == 96
    target = _predictions(model, pruner.probe, 64)
    before = nonzero_counts(model)
    layers = prunable_layers(model)
    weights = {n: weight_of(m).clone() for n, m in layers.items()}
    pruner.step()
    assert torch.equal(_predictions(model, pruner.probe, 64), target)
    after = nonzero_counts(model)
    outcomes = set()
    for name, rate in pruner.layer_rates.items():
        if after[name][0] == round(before[name][0] * 0.05):  # first attempt stood
            outcomes.add("first")
            assert rate == pytest.approx(0.99)  # 0.95 / 0.5, capped at max_rate
        elif after[name][0] == round(before[name][0] * 0.525):  # second attempt stood
            outcomes.add("second")
            assert rate == pytest.approx(0.475)
        else:  # both failed: the layer is exactly as it was, at a quarter of the rate
            outcomes.add("none")
            assert after[name][0] == before[name][0]
            assert rate == pytest.approx(0.2375)
            assert torch.equal(weight_of(layers[name]), weights[name])
    assert "none" in outcomes and outcomes - {"none"}  # both paths were taken
    loose = clone(trained)
    Pruner(loose, tiny_task(400), evaluate=lambda m: 1.0, finetune=lambda m: None,
           config=probe_config(probe_drop=1.0, rate=0.95, max_rate=0.99, min_density=0.0,
                               probe_tries=2)).step()
    assert sum(c[0] for c in nonzero_counts(loose).values()) <= \
        sum(c[0] for c in after.values())


def test_probe_rule_undone_round_restores_layer_rates(trained: nn.Module) -> None:
    model = clone(trained)
    scripted = iter([0.90, 0.10])
    pruner = Pruner(model, tiny_task(400), evaluate=lambda m: next(scripted),
                    finetune=lambda m: None,
                    config=probe_config(probe_drop=1.0, accuracy_drop=0.02))
    pruner.step()
    assert pruner.rate_scale == 0.5
    assert pruner.layer_rates == dict.fromkeys(pruner.names, 0.4)


def test_magnitude_baseline_global_and_layer(trained: nn.Module) -> None:
    glob = run(clone(trained), method="magnitude", accuracy_drop=1.0)
    layer = run(clone(trained), method="magnitude", accuracy_drop=1.0,
                config=PruneConfig(**{**FAST.to_dict(), "restore": FAST.restore,
                                      "ranking": "layer"}))
    for record in layer.history[1:]:
        # per-layer ranking: every layer keeps 60% of its non-zeros each round
        expected = [round(0.6 ** record.round * lay.weights) for lay in record.layers]
        assert [lay.nonzero_weights for lay in record.layers] == pytest.approx(expected, abs=2)
    first = glob.history[1]
    assert first.nonzero_weights == pytest.approx(0.6 * first.weights, abs=2)
    assert len({round(lay.density, 2) for lay in first.layers}) > 1  # one global threshold


def test_undone_rounds_back_off_and_stop(trained: nn.Module) -> None:
    model = clone(trained)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    scripted = iter([0.90, 0.50, 0.89, 0.10, 0.10])
    pruner = Pruner(model, tiny_task(100), evaluate=lambda m: next(scripted),
                    finetune=lambda m: None,
                    config=PruneConfig(**{**FAST.to_dict(), "restore": FAST.restore,
                                          "rounds": 10, "max_failures": 2,
                                          "accuracy_drop": 0.02}))
    first = pruner.step()
    assert not first.accepted and pruner.rate_scale == 0.5
    kept = {k: v for k, v in model.state_dict().items() if not k.endswith("_mask")}
    for key, value in kept.items():  # the undone round left the model as it was
        assert torch.equal(value, start[key.replace("_orig", "")])
    second = pruner.step()
    assert second.accepted and second.rate == pytest.approx(0.2)
    pruner.step()
    assert not pruner.done
    pruner.step()
    assert pruner.done and "accuracy budget" in pruner.stop_reason
    assert pruner.result().final.round == 2
    with pytest.raises(InputError, match="stopped"):
        pruner.step()


def test_energy_target_stops_the_run(trained: nn.Module) -> None:
    result = run(clone(trained), method="magnitude", accuracy_drop=1.0, energy_target=0.999)
    assert result.stop_reason == "energy target met" and len(result.history) == 2


def test_same_seed_same_numbers(trained: nn.Module) -> None:
    a = run(clone(trained), method="energy-aware", accuracy_drop=1.0)
    b = run(clone(trained), method="energy-aware", accuracy_drop=1.0)
    assert [r.to_dict() | {"seconds": 0} for r in a.history] == \
        [r.to_dict() | {"seconds": 0} for r in b.history]
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items(),
                                  strict=True):
        assert ka == kb and torch.equal(va, vb)


@pytest.mark.parametrize("allocation", ["energy", "probe"])
def test_resume_after_interruption_equals_uninterrupted(trained: nn.Module, tmp_path: Path,
                                                        allocation: str) -> None:
    config = probe_config(allocation=allocation, probe_drop=0.02)
    whole = run(clone(trained), method="energy-aware", accuracy_drop=1.0, config=config,
                checkpoint_dir=tmp_path / "whole")

    class Killed(Exception):
        pass

    def kill_after_two(record: object) -> None:
        if record.round == 2:  # type: ignore[attr-defined]
            raise Killed

    with pytest.raises(Killed):
        run(clone(trained), method="energy-aware", accuracy_drop=1.0, config=config,
            checkpoint_dir=tmp_path / "cut", on_step=kill_after_two)
    resumed = run(clone(trained), method="energy-aware", accuracy_drop=1.0, config=config,
                  checkpoint_dir=tmp_path / "cut", resume=True)
    assert [r.to_dict() | {"seconds": 0} for r in resumed.history] == \
        [r.to_dict() | {"seconds": 0} for r in whole.history]
    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key])


def test_user_driven_steps(trained: nn.Module) -> None:
    """A user's own loops: evaluate and finetune callables, stepping by hand."""
    data, val = tiny_task(300), tiny_task(200, seed=1)
    model = clone(trained)
    calls = []

    def my_finetune(m: nn.Module) -> None:
        calls.append(pruner.round)
        train(m, data, FT, seed=pruner.round)

    loader = torch.utils.data.DataLoader(data, batch_size=32)  # any iterable of batches
    pruner = Pruner(model, loader, evaluate=lambda m: evaluate(m, val), finetune=my_finetune,
                    config=FAST)
    while not pruner.done:
        pruner.step()
    assert calls == [1, 2, 3]
    assert pruner.result().final.accuracy >= pruner.accuracy_floor


@pytest.mark.parametrize("kwargs, message", [
    ({"accuracy_drop": -0.01}, "accuracy budget must be a non-negative"),
    ({"energy_target": 0.0}, r"energy target must lie in \(0, 1\]"),
    ({"energy_target": 1.5}, r"energy target must lie in \(0, 1\]"),
    ({"method": "random"}, "unknown method"),
])
def test_bad_budgets_are_input_errors(trained: nn.Module, kwargs: dict[str, object],
                                      message: str) -> None:
    with pytest.raises(InputError, match=message):
        run(clone(trained), **kwargs)


def test_unknown_options_are_input_errors() -> None:
    with pytest.raises(InputError, match="unknown allocation"):
        PruneConfig(allocation="random")
    with pytest.raises(InputError, match="unknown ranking"):
        PruneConfig(ranking="random")
    with pytest.raises(InputError, match="rate must lie in"):
        PruneConfig(rate=1.5)
    with pytest.raises(InputError, match="probe_drop must lie in"):
        PruneConfig(probe_drop=-0.1)
    with pytest.raises(InputError, match=r"max_rate must lie in \[rate, 1\)"):
        PruneConfig(rate=0.5, max_rate=0.4)


def test_model_without_prunable_layer_is_an_input_error() -> None:
    model = nn.Sequential(nn.Flatten(), nn.ReLU())
    with pytest.raises(InputError, match="no prunable layer"):
        prune(model, tiny_task(10), tiny_task(10))


def test_top_level_api() -> None:
    import nnjoules
    import nnjoules.prune.loop  # noqa: F401 - importing a submodule must not shadow it

    assert nnjoules.prune is prune and callable(nnjoules.prune)
    from nnjoules.prune.result import PruneResult

    assert nnjoules.PruneResult is PruneResult


@pytest.mark.parametrize("granularity", ["weight", "channel"])
def test_dataflow_option_measures_every_round_with_that_dataflow(
        trained: nn.Module, granularity: str) -> None:
    from dataclasses import replace

    from nnjoules.energy.estimate import estimate

    images = tiny_task(600).batch(torch.arange(8))[0]  # the 8 density images, batch 8
    config = replace(FAST, rounds=1, energy_batch=8)
    if granularity == "channel":  # channel pruning cuts no grouped convolution
        torch.manual_seed(0)
        trained = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                nn.Flatten(), nn.Linear(72, 3))
    result = run(clone(trained), config=config, granularity=granularity, dataflow="WS",
                 accuracy_drop=1.0)
    assert result.extra["dataflow"] == result.extra["config"]["dataflow"] == "weight-stationary"
    ws = estimate(trained, images, dataflow="weight-stationary")
    rs = estimate(trained, images, dataflow="row-stationary")
    assert result.dense.energy == pytest.approx(ws.total(), rel=1e-9)
    assert [lay.energy for lay in result.dense.layers] == pytest.approx(
        [item.total for item in ws.layers], rel=1e-9)
    assert abs(rs.total() / ws.total() - 1) > 0.01  # what ordering and allocation read differs
    assert result.final.energy == pytest.approx(
        estimate(result.model, images, dataflow="weight-stationary").total(), rel=1e-9)


def test_dataflow_names_are_checked_and_stored_canonical() -> None:
    assert PruneConfig(dataflow="os_b").dataflow == "output-stationary-b"
    assert PruneConfig.from_dict({"rounds": 2}).dataflow == "row-stationary"  # older configs
    with pytest.raises(InputError, match="dataflow: unknown 'diagonal'"):
        PruneConfig(dataflow="diagonal")
