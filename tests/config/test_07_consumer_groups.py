"""Kong's consumer groups in declarative config: groups with nested plugins,
consumers' ``groups``, plugins scoped by ``consumer_group``, and an error
with its path for each bad reference."""

import pytest

from fastgw.config.loader import ConfigError, parse_config


def doc(**extra) -> dict:
    return {"_format_version": "3.0", **extra}


def test_groups_members_and_scoped_plugins():
    config = parse_config(doc(
        consumer_groups=[{"name": "gold", "plugins": [
            {"name": "rate-limiting", "config": {"minute": 100}}]}, {"name": "free", "id": "5c1f4c0e-7a3b-4d2e-9f10-2b6c8d9e0a11"}],
        consumers=[{"username": "ann", "groups": [{"name": "gold"}, {"id": "5c1f4c0e-7a3b-4d2e-9f10-2b6c8d9e0a11"}]}],
        plugins=[{"name": "rate-limiting", "consumer_group": "free", "config": {"minute": 5}}],
    ))
    assert [g.name for g in config.consumer_groups] == ["gold", "free"]
    assert config.consumers[0].groups == ("gold", "free")
    scoped = sorted((p.consumer_group, p.config["minute"]) for p in config.plugins)
    assert scoped == [("free", 5), ("gold", 100)]


@pytest.mark.parametrize(("document", "path", "message"), [
    (doc(consumers=[{"username": "ann", "groups": [{"name": "nope"}]}]),
     "consumers[0].groups[0]", "unknown consumer group 'nope'"),
    (doc(plugins=[{"name": "rate-limiting", "consumer_group": "nope", "config": {"minute": 1}}]),
     "plugins[0].consumer_group", "unknown consumer group 'nope'"),
    (doc(consumer_groups=[{"name": "g"}, {"name": "g"}]), "consumer_groups[1].name",
     "consumer group name 'g'"),
    (doc(consumer_groups=[{"name": "g", "plugins": [{"name": "key-auth"}]}]),
     "consumer_groups[0].plugins[0]", "cannot be scoped to a consumer group"),
    (doc(consumer_groups=[{"name": "g"}], consumers=[{"username": "ann"}],
         plugins=[{"name": "rate-limiting", "consumer": "ann", "consumer_group": "g",
                   "config": {"minute": 1}}]),
     "plugins[0]", "not both"),
])
def test_bad_references_name_the_path(document, path, message):
    with pytest.raises(ConfigError) as failure:
        parse_config(document)
    errors = str(failure.value)
    assert path in errors and message in errors, errors
