"""Layered config: precedence, validation errors that name the key, secrets from the env."""

from __future__ import annotations

import pytest

from mktpipe.config import ConfigError, load_config, parse_overrides, secret


def test_overlay_env_var_and_cli_override_in_that_order():
    base = load_config("local", environ={})
    assert base.spark.shuffle_partitions == 8
    test = load_config("test", environ={})
    assert test.spark.shuffle_partitions == 2
    env = load_config("test", environ={"MKTPIPE__SPARK__SHUFFLE_PARTITIONS": "5"})
    assert env.spark.shuffle_partitions == 5
    cli = load_config("test", ["spark.shuffle_partitions=7"],
                      environ={"MKTPIPE__SPARK__SHUFFLE_PARTITIONS": "5"})
    assert cli.spark.shuffle_partitions == 7


def test_env_var_values_are_typed():
    cfg = load_config("local", environ={"MKTPIPE__SPARK__UI_ENABLED": "true",
                                        "MKTPIPE__GENERATE__DIRTY_RATE": "0.1"})
    assert cfg.spark.ui_enabled is True
    assert cfg.generate.dirty_rate == 0.1


def test_unknown_key_names_the_key_and_the_allowed_ones():
    with pytest.raises(ConfigError) as err:
        load_config("local", {"spark": {"shuffle_partition": 3}}, environ={})
    message = str(err.value)
    assert "spark.shuffle_partition" in message
    assert "shuffle_partitions" in message  # listed among the allowed keys


def test_unknown_section_from_env_var_is_refused():
    with pytest.raises(ConfigError, match="unknown key 'sparkk'"):
        load_config("local", environ={"MKTPIPE__SPARKK__MASTER": "local[1]"})


def test_bad_type_and_bad_choice_name_key_and_allowed_values():
    with pytest.raises(ConfigError, match="spark.shuffle_partitions.*integer"):
        load_config("local", ["spark.shuffle_partitions=many"], environ={})
    with pytest.raises(ConfigError, match="storage.backend.*'auto', 'delta-rs' or 'delta-spark'"):
        load_config("local", ["storage.backend=parquet"], environ={})
    with pytest.raises(ConfigError, match="generate.dirty_rate"):
        load_config("local", ["generate.dirty_rate=0.9"], environ={})


def test_unknown_environment_lists_known_ones():
    with pytest.raises(ConfigError, match="unknown environment 'prod'.*cluster"):
        load_config("prod", environ={})


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_overrides(["spark.master"])
    with pytest.raises(ConfigError, match="section.key"):
        parse_overrides(["master=local"])


def test_secret_missing_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("MKTPIPE_TEST_SECRET", raising=False)
    with pytest.raises(ConfigError, match="MKTPIPE_TEST_SECRET is not set.*pseudonymising"):
        secret("MKTPIPE_TEST_SECRET", "pseudonymising exports")
    monkeypatch.setenv("MKTPIPE_TEST_SECRET", "k")
    assert secret("MKTPIPE_TEST_SECRET", "x") == "k"


def test_models_get_their_settings_dataclasses_from_the_config():
    from mktpipe.model_settings import AnomalySettings, ClassifierSettings, intent_defaults

    cfg = load_config("local", ["models.anomalies.z_threshold=4.5"], environ={})
    churn = cfg.models.settings("churn")
    assert isinstance(churn, ClassifierSettings)
    assert churn.class_weight == cfg.models.churn["class_weight"]  # base.yaml's override
    intent = cfg.models.settings("intent")
    assert intent.models == intent_defaults().models and intent.tiers == intent_defaults().tiers
    # the product config votes (conf/base.yaml); the override changes only the threshold
    assert cfg.models.settings("anomalies") == AnomalySettings(z_threshold=4.5, method="vote")
    with pytest.raises(KeyError):
        cfg.models.settings("nope")


def test_a_bad_model_setting_fails_at_load_time_with_its_dotted_key():
    with pytest.raises(ConfigError, match="models.churn.*unknown keys.*max_dpeth"):
        load_config("local", ["models.churn.max_dpeth=3"], environ={})
    with pytest.raises(ConfigError, match="models.segmentation.*k_min"):
        load_config("local", ["models.segmentation.k_min=1"], environ={})


def test_the_config_does_not_import_the_model_library():
    """config.py sits below the models: it builds on mktpipe.model_settings only."""
    import ast
    from pathlib import Path

    import mktpipe.config

    tree = ast.parse(Path(mktpipe.config.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and m.startswith("mktpipe.models")}
