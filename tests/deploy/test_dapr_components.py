"""Every Dapr component's metadata names exist for its type, and the required ones are set."""

from __future__ import annotations

from .checks import Manifests, dapr_metadata_problems


def _pubsub(m: Manifests) -> dict:  # type: ignore[type-arg]
    return next(d for p, d in m.docs("Component") if p == "dapr-components/pubsub.yaml")


def _meta(component: dict, name: str) -> dict:  # type: ignore[type-arg]
    return next(e for e in component["spec"]["metadata"] if e["name"] == name)


def test_component_metadata_matches_the_component_definitions(manifests: Manifests) -> None:
    assert dapr_metadata_problems(manifests) == []


def test_the_cluster_only_sasl_example_is_checked_too(manifests: Manifests) -> None:
    assert any(p == "knative/managed/pubsub-kafka-sasl.yaml" for p, _ in manifests.docs("Component"))


def test_a_misspelt_metadata_name_is_reported(broken: Manifests) -> None:
    _meta(_pubsub(broken), "initialOffset")["name"] = "initalOffset"
    assert any("'initalOffset' is not a field of pubsub.kafka" in p for p in dapr_metadata_problems(broken))


def test_a_missing_required_field_is_reported(broken: Manifests) -> None:
    pubsub = _pubsub(broken)
    pubsub["spec"]["metadata"].remove(_meta(pubsub, "brokers"))
    assert any("required metadata 'brokers' is not set" in p for p in dapr_metadata_problems(broken))


def test_a_secret_reference_counts_as_set_but_an_empty_value_does_not(broken: Manifests) -> None:
    pubsub = _pubsub(broken)
    assert "secretKeyRef" in _meta(pubsub, "brokers")
    _meta(pubsub, "brokers").pop("secretKeyRef")
    _meta(pubsub, "brokers")["value"] = ""
    assert any("'brokers' is not set" in p for p in dapr_metadata_problems(broken))


def test_a_value_outside_the_allowed_ones_is_reported(broken: Manifests) -> None:
    _meta(_pubsub(broken), "initialOffset")["value"] = "earliest"  # KafkaSource's word, not Dapr's
    assert any("initialOffset = 'earliest' is not one of" in p for p in dapr_metadata_problems(broken))


def test_the_chosen_authentication_profile_requires_its_fields(broken: Manifests) -> None:
    sasl = next(d for p, d in broken.docs("Component") if p == "knative/managed/pubsub-kafka-sasl.yaml")
    sasl["spec"]["metadata"].remove(_meta(sasl, "saslPassword"))
    assert any("required metadata 'saslPassword' is not set" in p for p in dapr_metadata_problems(broken))


def test_a_cron_binding_needs_its_schedule(broken: Manifests) -> None:
    cron = broken.get("Component", "outbox-sweep")
    cron["spec"]["metadata"] = []
    assert any("required metadata 'schedule' is not set" in p for p in dapr_metadata_problems(broken))


def test_an_optional_authentication_profile_once_started_must_be_complete(broken: Manifests) -> None:
    smtp = {"apiVersion": "dapr.io/v1alpha1", "kind": "Component", "metadata": {"name": "mail"},
            "spec": {"type": "bindings.smtp", "version": "v1", "metadata": [
                {"name": "host", "value": "mail"}, {"name": "emailFrom", "value": "a@b"},
                {"name": "emailTo", "value": "c@d"}, {"name": "subject", "value": "s"}]}}
    broken.files["dapr-components/mail.yaml"] = [smtp]
    assert dapr_metadata_problems(broken) == []  # no authentication at all is fine
    smtp["spec"]["metadata"].append({"name": "user", "value": "todo"})
    assert any("required metadata 'password' is not set" in p for p in dapr_metadata_problems(broken))
