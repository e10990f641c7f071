"""The Kubernetes manifests: every overlay renders with kustomize, every rendered document is valid against the
Kubernetes JSON schemas (kubernetes-validate, offline, strict), and the API workload carries the security and
operability settings the deployment promises. Also checks the Dagster Helm values (k8s/dagster/values.yaml): the
same security standard on the webserver, daemon, code server and run pods, and the same run pods as
dagster.prod.yaml. Election night: the live updater's Deployment, the NATS Helm values (k8s/nats/values.yaml) and
the NetworkPolicies between them (only the updater and the API reach NATS)."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from deployment_tests.deploy_helpers import (
    K8S_DIR,
    KUBERNETES_VERSION,
    OVERLAYS,
    kustomize_command,
    render,
)

_COMMAND, _FOUND = kustomize_command()
needs_kustomize = pytest.mark.skipif(_COMMAND is None, reason=_FOUND)

API_IMAGE = "ghcr.io/election-forecasting/election-forecasting-api"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}
_PRODUCTION = {"namespace": "election-production", "replicas": 3, "tag": "0.1.0", "hpa": (2, 10)}
EXPECTED = {
    "staging": {
        "namespace": "election-staging",
        "replicas": 2,
        "tag": "0.1.0-rc.1",
        "hpa": (1, 3),
        "mode": "synthetic",
    },
    "production": {**_PRODUCTION, "mode": "synthetic"},
    "production-real": {**_PRODUCTION, "mode": "real"},
}
UID = 10001  # our images' user (Dockerfile)
DAGSTER_HOME = "/opt/dagster/dagster_home"
# Volume types Pod Security "restricted" admits that these pods use; and the sysctls it admits (the "safe" set).
RESTRICTED_VOLUME_TYPES = {"emptyDir", "persistentVolumeClaim", "configMap", "secret", "projected"}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}


def _docs(overlay: str) -> tuple[dict, ...]:
    return render(f"k8s/overlays/{overlay}")


def _one(docs, kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _pod_spec(doc: dict) -> dict:
    spec = doc["spec"]
    if doc["kind"] == "Pod":
        return spec
    if doc["kind"] == "CronJob":
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    return spec["template"]["spec"]


def _workloads(docs):
    return [d for d in docs if d["kind"] in WORKLOAD_KINDS]


UPDATER = "election-live-updater"
UPDATER_PORT = 9108
# The NATS Helm release (k8s/nats/values.yaml) is installed as "nats": its server pods carry these labels (the
# chart's selector labels), its client Service is "nats".
NATS_RELEASE = "nats"
NATS_POD = {
    "app.kubernetes.io/name": "nats",
    "app.kubernetes.io/instance": NATS_RELEASE,
    "app.kubernetes.io/component": "nats",
}
NATS_CLIENT_PORT, NATS_CLUSTER_PORT, NATS_MONITOR_PORT, NATS_EXPORTER_PORT = 4222, 6222, 8222, 7777


def _api(docs) -> tuple[dict, dict, dict]:
    deployment = _one(docs, "Deployment", "election-api")
    pod = _pod_spec(deployment)
    (container,) = [c for c in pod["containers"] if c["name"] == "api"]
    return deployment, pod, container


@needs_kustomize
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_every_document_is_schema_valid(overlay):
    import kubernetes_validate

    docs = _docs(overlay)
    kinds = {d["kind"] for d in docs}
    assert {
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "PersistentVolumeClaim",
    } <= kinds, kinds
    errors = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {error.message} at {list(error.path)}")
    assert not errors, "\n".join(errors)


@needs_kustomize
def test_base_renders_and_is_schema_valid():
    import kubernetes_validate

    docs = render("k8s/base")
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@needs_kustomize
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_lands_in_the_overlay_namespace(overlay):
    docs = _docs(overlay)
    namespace = EXPECTED[overlay]["namespace"]
    assert _one(docs, "Namespace")["metadata"]["name"] == namespace
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == namespace, doc["metadata"]


@needs_kustomize
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_is_locked_down(overlay):
    docs = _docs(overlay)
    workloads = _workloads(docs)
    assert workloads
    for workload in workloads:
        where = f"{overlay} {workload['kind']}/{workload['metadata']['name']}"
        pod = _pod_spec(workload)
        pod_sc = pod.get("securityContext", {})
        assert pod.get("automountServiceAccountToken") is False, where
        assert pod.get("serviceAccountName") and pod["serviceAccountName"] != "default", where
        assert pod.get("hostNetwork") is not True and pod.get("hostPID") is not True, where
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        for container in pod["containers"] + pod.get("initContainers", []):
            sc = {**pod_sc, **container.get("securityContext", {})}
            cwhere = f"{where} container {container['name']}"
            assert sc.get("runAsNonRoot") is True, cwhere
            assert sc.get("runAsUser") == 10001, cwhere
            assert sc.get("readOnlyRootFilesystem") is True, cwhere
            assert sc.get("allowPrivilegeEscalation") is False, cwhere
            assert sc.get("privileged") is not True, cwhere
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], cwhere
            assert not sc.get("capabilities", {}).get("add"), cwhere
            assert sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", cwhere
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(kind, {})), f"{cwhere}: {kind} {resources}"
            if container in pod["containers"]:
                assert container.get("livenessProbe") and container.get("readinessProbe"), cwhere
            assert ":latest" not in container["image"] and ":" in container["image"], cwhere


@needs_kustomize
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_deployment(overlay):
    docs = _docs(overlay)
    expected = EXPECTED[overlay]
    deployment, pod, container = _api(docs)
    assert deployment["spec"]["replicas"] == expected["replicas"]
    assert container["image"] == f"{API_IMAGE}:{expected['tag']}"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] in ("http", 8000)
    # Scraped through pod annotations (no ServiceMonitor CRD).
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8000",
        "prometheus.io/path": "/metrics",
    }
    # Volumes: /tmp is an emptyDir, the model store and reports are the shared PVCs, read-only at both levels.
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    for path, claim in (("/models", "election-model-store"), ("/reports", "election-reports")):
        mount = mounts[path]
        assert mount.get("readOnly") is True, path
        pvc = volumes[mount["name"]]["persistentVolumeClaim"]
        assert pvc["claimName"] == claim and pvc.get("readOnly") is True, path
    assert set(mounts) == {"/tmp", "/models", "/reports"}
    # Settings come from the (hash-suffixed) ConfigMap; the admin token from an optional Secret.
    config = _api_config(docs, container)
    assert config["ELECTION_MODEL_STORE"] == "/models" and config["ELECTION_REPORTS_DIR"] == "/reports"
    assert config["ELECTION_REAL_MODEL_STORE"] == "/models/real"
    assert config.get("ELECTION_API_MODE", "synthetic") == expected["mode"]
    assert config["HOST"] == "0.0.0.0" and config["PORT"] == "8000"  # noqa: S104 - inside the pod
    (token,) = [e for e in container["env"] if e["name"] == "ELECTION_API_ADMIN_TOKEN"]
    assert token["valueFrom"]["secretKeyRef"]["optional"] is True
    # The PVCs the API reads are created here, shareable with the Dagster run pods.
    for claim in ("election-model-store", "election-reports", "election-data"):
        assert _one(docs, "PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteMany"]


def _api_config(docs, container) -> dict[str, str]:
    """The API's settings: the (hash-suffixed) ConfigMap its container takes its environment from."""
    config_name = container["envFrom"][0]["configMapRef"]["name"]
    return _one(docs, "ConfigMap", config_name)["data"]


@needs_kustomize
def test_the_real_mode_overlay_is_production_with_only_the_api_mode_changed():
    real, production = _docs("production-real"), _docs("production")
    _, _, real_container = _api(real)
    _, _, container = _api(production)
    real_config, config = _api_config(real, real_container), _api_config(production, container)
    assert real_config == {**config, "ELECTION_API_MODE": "real"}
    # Switching mode changes the ConfigMap's (hash-suffixed) name, so applying the overlay rolls the Deployment.
    assert real_container["envFrom"] != container["envFrom"]

    def comparable(docs) -> list[str]:
        """Everything but the settings ConfigMap, with the Deployment's reference to it blanked (on a copy: the
        rendered documents are cached and shared between tests)."""
        out = []
        for doc in docs:
            if doc["kind"] == "ConfigMap":
                continue
            doc = copy.deepcopy(doc)
            if doc["kind"] == "Deployment":
                for c in doc["spec"]["template"]["spec"]["containers"]:
                    for source in c.get("envFrom", []):
                        source.get("configMapRef", {}).pop("name", None)
            out.append(yaml.safe_dump(doc, sort_keys=True))
        return sorted(out)

    assert comparable(real) == comparable(production)


@needs_kustomize
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_api_reads_the_model_the_run_pods_write(overlay, dagster_values):
    """The store the API's settings resolve to (election_api.settings, for the overlay's ELECTION_API_MODE) is the
    one the pipeline's settings resolve to in the run pods (election_assets.settings, from runLauncher's env): on the
    model-store claim, which the API mounts read-only and the run pods read-write at the same path."""
    from election_api.settings import ApiSettings
    from election_assets.settings import PipelineSettings

    docs = _docs(overlay)
    _, pod, container = _api(docs)
    api = ApiSettings.from_env(_api_config(docs, container))
    assert api.data_mode.name == EXPECTED[overlay]["mode"]
    launcher = dagster_values["runLauncher"]["config"]["k8sRunLauncher"]
    pipeline = PipelineSettings.from_env(dict(item.split("=", 1) for item in launcher["envVars"]))
    published = pipeline.real_model_store_dir if api.data_mode.name == "real" else pipeline.model_store_dir
    assert api.model_store_dir == published

    def claim_under(path, mounts, volumes) -> tuple[str, bool]:
        (mount,) = [m for m in mounts if path.is_relative_to(m["mountPath"])]
        return volumes[mount["name"]]["persistentVolumeClaim"]["claimName"], bool(mount.get("readOnly"))

    api_volumes = {v["name"]: v for v in pod["volumes"]}
    run_volumes = {v["name"]: v for v in launcher["volumes"]}
    assert claim_under(api.model_store_dir, container["volumeMounts"], api_volumes) == ("election-model-store", True)
    assert claim_under(published, launcher["volumeMounts"], run_volumes) == ("election-model-store", False)
    # Both stores on one claim, neither inside the other's layout (versions/, LATEST, .staging/ at the root).
    assert pipeline.real_model_store_dir.parent == pipeline.model_store_dir
    assert pipeline.real_model_store_dir.name not in ("versions", ".staging", "LATEST")


@needs_kustomize
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_differ_in_resources(overlay):
    _, _, container = _api(_docs(overlay))
    _, _, base_container = _api(render("k8s/base"))
    assert container["resources"] != base_container["resources"]
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    assert requests["cpu"] != limits["cpu"] or requests["memory"] != limits["memory"]


@needs_kustomize
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_hpa_pdb(overlay):
    docs = _docs(overlay)
    deployment, _, _ = _api(docs)
    selector = deployment["spec"]["selector"]["matchLabels"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()

    service = _one(docs, "Service", "election-api")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["selector"] == selector
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in ("http", 8000)

    hpa = _one(docs, "HorizontalPodAutoscaler", "election-api")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "election-api"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == EXPECTED[overlay]["hpa"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"

    pdb = _one(docs, "PodDisruptionBudget", "election-api")
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable") == 1


@needs_kustomize
def test_base_api_defaults():
    docs = render("k8s/base")
    deployment, _, _ = _api(docs)
    assert deployment["spec"]["replicas"] == 3
    hpa = _one(docs, "HorizontalPodAutoscaler", "election-api")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)


@needs_kustomize
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_least_privilege_rbac(overlay):
    """The API needs no Kubernetes API access: its ServiceAccount mounts no token and nothing binds a role to it."""
    docs = _docs(overlay)
    account = _one(docs, "ServiceAccount", "election-api")
    assert account.get("automountServiceAccountToken") is False
    for binding in (d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        for subject in binding.get("subjects", []):
            assert subject.get("name") != "election-api", binding["metadata"]["name"]
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    for role in (d for d in docs if d["kind"] == "Role"):
        assert not role.get("rules"), role["metadata"]["name"]


def _policies(docs) -> dict[str, dict]:
    return {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}


def _selects_api(spec: dict) -> bool:
    labels = {"app.kubernetes.io/name": "election-api", "app.kubernetes.io/component": "api"}
    match = spec["podSelector"].get("matchLabels", {})
    return not spec["podSelector"] or match.items() <= labels.items()


@needs_kustomize
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies(overlay):
    policies = _policies(_docs(overlay))
    # Default deny of both directions for every pod in the namespace.
    deny = [
        s
        for s in policies.values()
        if s["podSelector"] == {}
        and set(s["policyTypes"]) == {"Ingress", "Egress"}
        and not s.get("ingress")
        and not s.get("egress")
    ]
    assert deny, policies
    # DNS for everyone.
    dns_ports = {
        (p["protocol"], p["port"])
        for s in policies.values()
        if s["podSelector"] == {}
        for rule in s.get("egress", [])
        for p in rule.get("ports", [])
    }
    assert {("UDP", 53), ("TCP", 53)} <= dns_ports
    # The API: 8000 from anywhere (LoadBalancer) and from the monitoring namespace; no other port.
    api_ingress = [r for s in policies.values() if _selects_api(s) for r in s.get("ingress", [])]
    assert any("from" not in r and r["ports"] == [{"protocol": "TCP", "port": 8000}] for r in api_ingress)
    assert any(
        peer.get("namespaceSelector", {}).get("matchLabels") == {"kubernetes.io/metadata.name": "monitoring"}
        for r in api_ingress
        for peer in r.get("from", [])
    )
    assert {p["port"] for r in api_ingress for p in r.get("ports", [])} == {8000}
    # The API's egress: DNS, and NATS's client port (the /live/* routes read the key-value bucket) to the NATS server
    # pods only; every egress rule that applies to its pods names its ports.
    api_egress = [r for s in policies.values() if _selects_api(s) for r in s.get("egress", [])]
    assert {p["port"] for r in api_egress for p in r["ports"]} == {53, NATS_CLIENT_PORT}
    assert all(r.get("ports") for r in api_egress)
    for rule in api_egress:
        if any(p["port"] == NATS_CLIENT_PORT for p in rule["ports"]):
            assert rule["to"] == [{"podSelector": {"matchLabels": NATS_POD}}], rule


# -- Dagster Helm values -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dagster_values() -> dict:
    return yaml.safe_load((K8S_DIR / "dagster" / "values.yaml").read_text())


def test_dagster_values_user_deployment(dagster_values):
    user = dagster_values["dagster-user-deployments"]
    assert user["enabled"] is True and user["enableSubchart"] is True
    (deployment,) = user["deployments"]
    assert deployment["image"]["repository"] == "ghcr.io/election-forecasting/election-forecasting-dagster"
    assert deployment["image"]["tag"] and deployment["image"]["tag"] != "latest"
    args = deployment.get("codeServerArgs") or deployment.get("dagsterApiGrpcArgs")
    assert args[args.index("-m") + 1] == "election_assets.definitions"
    assert args[args.index("-a") + 1] == "defs"
    assert deployment["port"] == 3030
    assert {"name": "election-mlflow"} in deployment["envSecrets"]


def test_dagster_values_run_launcher(dagster_values):
    launcher = dagster_values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    config = launcher["config"]["k8sRunLauncher"]
    assert {"name": "election-mlflow"} in config["envSecrets"]  # MLFLOW_TRACKING_URI
    env = dict(item.split("=", 1) for item in config["envVars"])
    assert env["ELECTION_MODEL_STORE"] == "/models" and env["ELECTION_REPORTS_DIR"] == "/reports"
    assert env["ELECTION_REAL_MODEL_STORE"] == "/models/real"
    volumes = {v["name"]: v for v in config["volumes"]}
    mounts = {m["mountPath"]: m for m in config["volumeMounts"]}
    model_volume = volumes[mounts["/models"]["name"]]
    assert model_volume["persistentVolumeClaim"]["claimName"] == "election-model-store"
    assert not mounts["/models"].get("readOnly"), "the run pods write the model store"
    assert volumes[mounts["/reports"]["name"]]["persistentVolumeClaim"]["claimName"] == "election-reports"
    assert volumes[mounts["/data"]["name"]]["persistentVolumeClaim"]["claimName"] == "election-data"
    # The claims the run pods mount are the ones the kustomize base creates; the rest is scratch space.
    pvcs = yaml.safe_load_all((K8S_DIR / "base" / "pvc.yaml").read_text())
    claim_names = {doc["metadata"]["name"] for doc in pvcs if doc}
    claims = {v["persistentVolumeClaim"]["claimName"] for v in volumes.values() if "persistentVolumeClaim" in v}
    assert claims == {"election-model-store", "election-reports", "election-data"} <= claim_names
    assert all("emptyDir" in v for v in volumes.values() if "persistentVolumeClaim" not in v)


def test_dagster_values_postgres_daemon_and_no_secrets(dagster_values):
    postgres = dagster_values["postgresql"]
    assert postgres["enabled"] is True or postgres["postgresqlHost"]
    assert postgres["postgresqlPassword"] == "", "the password is given at install time, never committed"
    assert dagster_values["global"]["postgresqlSecretName"]
    assert dagster_values["dagsterDaemon"]["enabled"] is True
    assert dagster_values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert dagster_values["rbacEnabled"] is True
    # Only the chart's current component names (dagit was renamed dagsterWebserver in chart 1.3).
    assert "dagit" not in dagster_values and "dagsterWebserver" in dagster_values


def _prod_instance() -> dict:
    return yaml.safe_load((K8S_DIR.parent / "instance" / "dagster.prod.yaml").read_text())


def test_dagster_values_and_prod_instance_launch_the_same_run_pods(dagster_values):
    """The chart's runLauncher values and dagster.prod.yaml (the same instance without the chart) must not drift:
    same env, secrets, volumes, mounts, resources and security settings for the run pods."""
    values = dagster_values["runLauncher"]["config"]["k8sRunLauncher"]
    prod = _prod_instance()["run_launcher"]["config"]
    assert [s["name"] for s in values["envSecrets"]] == prod["env_secrets"]
    assert values["envVars"] == prod["env_vars"]
    assert values["volumes"] == prod["volumes"]
    assert values["volumeMounts"] == prod["volume_mounts"]
    assert values["resources"] == prod["resources"]
    assert values["securityContext"] == prod["security_context"]
    assert values["securityContext"]["readOnlyRootFilesystem"] is True
    assert (
        values["runK8sConfig"]["podSpecConfig"]["securityContext"]
        == prod["run_k8s_config"]["pod_spec_config"]["security_context"]
    )
    # DAGSTER_HOME (the emptyDir every Dagster pod mounts there) is the same path in both, and in the image.
    assert prod["dagster_home"] == dagster_values["global"]["dagsterHome"] == DAGSTER_HOME
    # Neither instance captures compute logs: the local manager would write into the run pods' scratch home.
    assert dagster_values["computeLogManager"]["type"] == "NoOpComputeLogManager"
    assert _prod_instance()["compute_logs"] == {
        "module": "dagster.core.storage.noop_compute_log_manager",
        "class": "NoOpComputeLogManager",
    }
    # The chart names these after the release ("dagster") and global values; the file must use the same names.
    assert prod["instance_config_map"] == "dagster-instance"
    assert prod["postgres_password_secret"] == dagster_values["global"]["postgresqlSecretName"]
    assert prod["service_account_name"] == dagster_values["global"]["serviceAccountName"]
    # The IO manager's storage is on the shared data claim in both (see test_postgres_instance.py).
    assert (
        dagster_values["additionalInstanceConfig"]["local_artifact_storage"]
        == _prod_instance()["local_artifact_storage"]
    )


def test_dagster_values_code_server_does_not_leak_into_runs(dagster_values):
    """With includeConfigInLaunchedRuns the chart hands the code server's resources and volumes to every run, and
    dagster-k8s lets them override the run launcher's; it is off, so runLauncher alone shapes the run pods. The code
    server mounts the model store read-only (the drift sensor reads the champion's version there)."""
    (deployment,) = dagster_values["dagster-user-deployments"]["deployments"]
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": False}
    volumes = {v["name"]: v for v in deployment["volumes"]}
    (mount,) = [m for m in deployment["volumeMounts"] if "persistentVolumeClaim" in volumes[m["name"]]]
    assert mount["mountPath"] == "/models" and mount["readOnly"] is True
    claim = volumes[mount["name"]]["persistentVolumeClaim"]
    assert claim == {"claimName": "election-model-store", "readOnly": True}
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["ELECTION_MODEL_STORE"] == mount["mountPath"]
    assert env["ELECTION_REAL_MODEL_STORE"] == f"{mount['mountPath']}/real"
    # The code server sees the same paths as the run pods.
    launcher = dagster_values["runLauncher"]["config"]["k8sRunLauncher"]
    launcher_env = dict(item.split("=", 1) for item in launcher["envVars"])
    assert env == launcher_env


def _dagster_pods(values: dict) -> dict[str, dict]:
    """Every pod of the Dagster release that k8s/dagster/values.yaml shapes, as the chart (or dagster-k8s, for the
    run pods) assembles it: pod and container security contexts, our volumes and mounts plus the ones the chart adds
    itself (the instance's dagster.yaml by subPath into DAGSTER_HOME, the workspace), and whose image it runs."""
    home = values["global"]["dagsterHome"]
    chart_volumes = [
        {"name": "dagster-instance", "configMap": {"name": "dagster-instance"}},
        {"name": "dagster-workspace-yaml", "configMap": {"name": "dagster-workspace-yaml"}},
    ]
    chart_mounts = [
        {"name": "dagster-instance", "mountPath": f"{home}/dagster.yaml", "subPath": "dagster.yaml"},
        {"name": "dagster-workspace-yaml", "mountPath": "/dagster-workspace/"},
    ]
    (code,) = values["dagster-user-deployments"]["deployments"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    pods = {}
    for name, component in (("webserver", values["dagsterWebserver"]), ("daemon", values["dagsterDaemon"])):
        pods[name] = {
            "pod": component.get("podSecurityContext", {}),
            "container": component.get("securityContext", {}),
            "volumes": component.get("volumes", []),
            "mounts": component.get("volumeMounts", []),
            "chart_volumes": chart_volumes,
            "chart_mounts": chart_mounts,
            "our_image": "image" in component,
        }
    pods["code server"] = {
        "pod": code.get("podSecurityContext", {}),
        "container": code.get("securityContext", {}),
        "volumes": code.get("volumes", []),
        "mounts": code.get("volumeMounts", []),
        "chart_volumes": [],
        "chart_mounts": [],
        "our_image": True,
    }
    pods["run pods"] = {
        "pod": launcher["runK8sConfig"]["podSpecConfig"].get("securityContext", {}),
        "container": launcher.get("securityContext", {}),
        "volumes": launcher.get("volumes", []),
        "mounts": launcher.get("volumeMounts", []),
        "chart_volumes": [],
        "chart_mounts": [],
        "our_image": True,  # DAGSTER_CURRENT_IMAGE, the code server's
    }
    return pods


def _as_pod(name: str, spec: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name.replace(" ", "-")},
        "spec": {
            "securityContext": spec["pod"],
            "containers": [
                {
                    "name": "dagster",
                    "image": "example.invalid/dagster:1.0.0",
                    "securityContext": spec["container"],
                    "volumeMounts": [*spec["chart_mounts"], *spec["mounts"]],
                }
            ],
            "volumes": [*spec["chart_volumes"], *spec["volumes"]],
        },
    }


@pytest.mark.parametrize("workload", ["webserver", "daemon", "code server", "run pods"])
def test_every_dagster_workload_is_locked_down(dagster_values, workload):
    """The settings Pod Security "restricted" requires, and a read-only root filesystem with writable emptyDir
    volumes exactly where Dagster writes (/tmp, DAGSTER_HOME); the same standard as the API Deployment."""
    import kubernetes_validate

    from deployment_tests.deploy_helpers import KUBERNETES_VERSION

    spec = _dagster_pods(dagster_values)[workload]
    # The values are real Kubernetes fields (the chart pastes them into the pod spec as they are).
    kubernetes_validate.validate(_as_pod(workload, spec), KUBERNETES_VERSION, strict=True)
    pod_sc, container_sc = spec["pod"], spec["container"]
    sc = {**pod_sc, **container_sc}
    assert sc.get("runAsNonRoot") is True, workload
    if spec["our_image"]:
        assert pod_sc.get("runAsUser") == UID and pod_sc.get("runAsGroup") == UID, workload
    else:
        # The chart's image declares no user: it gets an explicit unprivileged one, not ours.
        assert pod_sc.get("runAsUser") not in (None, 0, UID) and pod_sc.get("runAsGroup") not in (None, 0), workload
    assert pod_sc.get("seccompProfile") == {"type": "RuntimeDefault"}, workload
    assert container_sc.get("allowPrivilegeEscalation") is False, workload
    assert container_sc.get("readOnlyRootFilesystem") is True, workload
    assert container_sc.get("privileged") is not True, workload
    assert container_sc.get("capabilities") == {"drop": ["ALL"]}, workload
    assert {s["name"] for s in pod_sc.get("sysctls", [])} <= SAFE_SYSCTLS, workload
    # Writable scratch space where Dagster writes; everything else is a claim or a ConfigMap.
    volumes = {v["name"]: v for v in [*spec["chart_volumes"], *spec["volumes"]]}
    assert len(volumes) == len(spec["chart_volumes"]) + len(spec["volumes"]), "volume names collide with the chart's"
    for volume in volumes.values():
        assert set(volume) - {"name"} <= RESTRICTED_VOLUME_TYPES, volume
    mounts = {m["mountPath"]: m for m in spec["mounts"]}
    for path in ("/tmp", DAGSTER_HOME):  # noqa: S108 - an emptyDir mount point, not a shared /tmp
        assert path in mounts, f"{workload}: {path} must be a writable volume"
        assert "emptyDir" in volumes[mounts[path]["name"]] and not mounts[path].get("readOnly"), workload
    for mount in spec["mounts"]:
        assert mount["name"] in volumes, mount


def test_the_webserver_can_bind_its_port_without_root(dagster_values):
    """The chart runs `dagster-webserver -p <service.port>`; below 1024 a process without capabilities needs the
    pod's net.ipv4.ip_unprivileged_port_start at or below that port."""
    webserver = dagster_values["dagsterWebserver"]
    port = webserver["service"]["port"]
    if port < 1024:
        sysctls = {s["name"]: int(s["value"]) for s in webserver["podSecurityContext"].get("sysctls", [])}
        assert sysctls.get("net.ipv4.ip_unprivileged_port_start", 1024) <= port


@needs_kustomize
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_let_the_dagster_release_work(overlay):
    """Run pods (labelled by dagster-k8s itself) and the chart's pods reach each other, and the bundled PostgreSQL,
    whose Bitnami 8.1.0 chart still uses the old app/release labels, accepts them on 5432."""
    from dagster_k8s.utils import get_common_labels

    policies = _policies(_docs(overlay))

    def selecting(labels: dict) -> list[dict]:
        return [s for s in policies.values() if s["podSelector"].get("matchLabels", {}).items() <= labels.items()]

    run_pod = {**get_common_labels(), "app.kubernetes.io/component": "run_worker"}
    assert any(s.get("ingress") and s.get("egress") for s in selecting(run_pod) if s["podSelector"])
    postgres_pod = {"app": "postgresql", "release": "dagster", "role": "master"}
    ingress = [r for s in selecting(postgres_pod) if s["podSelector"] for r in s.get("ingress", [])]
    assert any(
        {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": "dagster"}}} in r["from"]
        and r["ports"] == [{"protocol": "TCP", "port": 5432}]
        for r in ingress
    ), ingress
    # The release's pods may send to 5432 (the egress side of the same connection).
    release_egress = [r for s in selecting(run_pod) for r in s.get("egress", [])]
    assert any({"protocol": "TCP", "port": 5432} in r.get("ports", []) for r in release_egress)


# -- Election night: the live updater, NATS and the policies between them ---------------------------------------


def _updater(docs) -> tuple[dict, dict, dict]:
    deployment = _one(docs, "Deployment", UPDATER)
    pod = _pod_spec(deployment)
    (container,) = pod["containers"]
    return deployment, pod, container


def _config_maps(docs, container) -> dict[str, str]:
    """Every setting a container takes from ConfigMaps (envFrom), later sources winning, then its own env values."""
    settings: dict[str, str] = {}
    for source in container.get("envFrom", []):
        settings.update(_one(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    settings.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return settings


@needs_kustomize
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_live_updater_deployment(overlay, dagster_values):
    from election_assets.core.live import LiveSettings

    docs = _docs(overlay)
    deployment, pod, container = _updater(docs)
    _, _, api_container = _api(docs)
    # One updater (the estimate lives in its process; two would split the durable consumer), never two at once.
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert (
        deployment["spec"]["selector"]["matchLabels"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    # The Dagster image at the code location's tag (the pipeline's libraries, which the API image must not hold, and
    # the code version that writes the prior it reads), running the updater module instead of the code server.
    (code,) = dagster_values["dagster-user-deployments"]["deployments"]
    assert container["image"] == f"{code['image']['repository']}:{code['image']['tag']}"
    assert container["image"] != api_container["image"]
    assert container["command"] == ["python", "-m", "election_assets.live.updater"]
    assert not container.get("args")
    # Metrics on 9108, the port the probes use and the pod annotations tell Prometheus to scrape.
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": UPDATER_PORT}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        action = container[probe].get("httpGet") or container[probe]["tcpSocket"]
        assert action["port"] in ("metrics", UPDATER_PORT), probe
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(UPDATER_PORT),
        "prometheus.io/path": "/metrics",
    }
    # Settings: the NATS ones from the ConfigMap the API reads too; the prior from the data claim, read-only.
    settings = _config_maps(docs, container)
    assert settings["ELECTION_LIVE_METRICS_PORT"] == str(UPDATER_PORT)
    assert settings["ELECTION_DATA_DIR"] == "/data"
    assert 2000 <= int(settings["ELECTION_LIVE_YEAR"]) <= 2100
    live = LiveSettings.from_env(settings)  # every value passes the settings' own checks
    assert live.nats_url == f"nats://{NATS_RELEASE}:{NATS_CLIENT_PORT}"
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert set(mounts) == {"/tmp", "/data"}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert mounts["/data"].get("readOnly") is True
    assert volumes[mounts["/data"]["name"]]["persistentVolumeClaim"] == {"claimName": "election-data", "readOnly": True}
    # Its own ServiceAccount, no token, no role.
    assert pod["serviceAccountName"] == UPDATER
    assert _one(docs, "ServiceAccount", UPDATER).get("automountServiceAccountToken") is False
    for binding in (d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        assert all(subject.get("name") != UPDATER for subject in binding.get("subjects", []))


@needs_kustomize
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_api_and_the_updater_share_the_live_settings(overlay):
    """The API reads the bucket the updater writes, on the same NATS: both take the election-night settings from one
    ConfigMap, and the API's own settings do not override them."""
    from election_assets.core.live import LiveSettings

    docs = _docs(overlay)
    _, _, updater = _updater(docs)
    _, _, api = _api(docs)
    live_sources = [s["configMapRef"]["name"] for s in updater["envFrom"]]
    assert len(live_sources) == 1 and live_sources[0].startswith("election-live-config-")
    assert live_sources[0] in [s["configMapRef"]["name"] for s in api["envFrom"]]
    live_keys = set(_one(docs, "ConfigMap", live_sources[0])["data"])
    assert {"ELECTION_NATS_URL", "ELECTION_RESULTS_STREAM", "ELECTION_LIVE_BUCKET"} <= live_keys
    assert not live_keys & set(_api_config(docs, api)), "the API's ConfigMap would shadow a live setting"
    assert not live_keys & {e["name"] for e in updater.get("env", [])}
    assert LiveSettings.from_env(_config_maps(docs, api)) == LiveSettings.from_env(_config_maps(docs, updater))


# A small NetworkPolicy evaluator: which connections the rendered policies admit (podSelector, namespaceSelector
# and their combination; ipBlock peers are not used here and never match).


def _matches(selector: dict, labels: dict) -> bool:
    if not labels.items() >= selector.get("matchLabels", {}).items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _peer_matches(peer: dict, labels: dict, namespace: dict, own_namespace: dict) -> bool:
    if "ipBlock" in peer:
        return False
    if "namespaceSelector" in peer and not _matches(peer["namespaceSelector"], namespace):
        return False
    if "namespaceSelector" not in peer and namespace != own_namespace:
        return False
    return _matches(peer.get("podSelector", {}), labels)


def _port_matches(rule: dict, port: int) -> bool:
    return "ports" not in rule or any(
        p.get("port") == port and p.get("protocol", "TCP") == "TCP" for p in rule["ports"]
    )


def _allowed(policies, direction: str, pod: dict, peer: dict, peer_namespace: dict, own: dict, port: int) -> bool:
    """Whether the policies (all in the namespace `own`) let `pod` receive from (Ingress) or send to (Egress) `peer`
    on TCP `port`. A pod no policy of that direction selects is not isolated."""
    key, peers = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [s for s in policies.values() if direction in s["policyTypes"] and _matches(s["podSelector"], pod)]
    if not selecting:
        return True
    return any(
        _port_matches(rule, port)
        and (
            "from" not in rule
            and "to" not in rule
            or any(_peer_matches(p, peer, peer_namespace, own) for p in rule[peers])
        )
        for s in selecting
        for rule in s.get(key, [])
    )


def _connects(policies, src: dict, dst: dict, port: int, namespace: str, src_namespace: str | None = None) -> bool:
    """Both ends agree: the source may send (if it lives in this namespace) and the destination may receive."""
    own = {"kubernetes.io/metadata.name": namespace}
    src_ns = {"kubernetes.io/metadata.name": src_namespace or namespace}
    egress = src_ns != own or _allowed(policies, "Egress", src, dst, own, own, port)
    return egress and _allowed(policies, "Ingress", dst, src, src_ns, own, port)


API_POD = {"app.kubernetes.io/name": "election-api", "app.kubernetes.io/component": "api"}
UPDATER_POD = {"app.kubernetes.io/name": UPDATER, "app.kubernetes.io/component": "live-updater"}
OTHER_PODS = {
    "dagster run pod": {"app.kubernetes.io/instance": "dagster", "app.kubernetes.io/component": "run_worker"},
    "dagster postgresql": {"app": "postgresql", "release": "dagster", "role": "master"},
    "nats-box": {
        "app.kubernetes.io/name": "nats",
        "app.kubernetes.io/instance": NATS_RELEASE,
        "app.kubernetes.io/component": "nats-box",
    },
    "unlabelled pod": {},
}


def test_the_policy_evaluator():
    """The evaluator the NATS tests rely on, on hand-made policies (default deny, a selector, a namespace peer)."""
    deny = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    policies = {"deny": deny}
    assert not _connects(policies, API_POD, NATS_POD, 4222, "ns")
    policies["in"] = {
        "podSelector": {"matchLabels": {"app.kubernetes.io/component": "nats"}},
        "policyTypes": ["Ingress"],
        "ingress": [
            {
                "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "election-api"}}}],
                "ports": [{"protocol": "TCP", "port": 4222}],
            }
        ],
    }
    assert not _connects(policies, API_POD, NATS_POD, 4222, "ns")  # the API may not send yet
    policies["out"] = {
        "podSelector": {
            "matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": ["election-api"]}]
        },
        "policyTypes": ["Egress"],
        "egress": [{"ports": [{"protocol": "TCP", "port": 4222}]}],
    }
    assert _connects(policies, API_POD, NATS_POD, 4222, "ns")
    assert not _connects(policies, API_POD, NATS_POD, 6222, "ns")
    assert not _connects(policies, UPDATER_POD, NATS_POD, 4222, "ns")
    assert not _connects(policies, API_POD, NATS_POD, 4222, "ns", src_namespace="elsewhere")  # pod peers are local


@needs_kustomize
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_updater_and_the_api_reach_nats(overlay):
    namespace = EXPECTED[overlay]["namespace"]
    policies = _policies(_docs(overlay))
    # The NATS servers are isolated both ways by policies of their own (not only by default deny).
    nats = [s for s in policies.values() if s["podSelector"] and _matches(s["podSelector"], NATS_POD)]
    assert nats and {"Ingress", "Egress"} <= {t for s in nats for t in s["policyTypes"]}
    for client in (API_POD, UPDATER_POD):
        assert _connects(policies, client, NATS_POD, NATS_CLIENT_PORT, namespace), client
        for port in (NATS_CLUSTER_PORT, NATS_MONITOR_PORT, NATS_EXPORTER_PORT):
            assert not _connects(policies, client, NATS_POD, port, namespace), (client, port)
    for name, pod in OTHER_PODS.items():
        assert not _connects(policies, pod, NATS_POD, NATS_CLIENT_PORT, namespace), name
    for other_namespace in ("monitoring", "default", "election-elsewhere"):
        for pod in (API_POD, UPDATER_POD, {}):
            assert not _connects(policies, pod, NATS_POD, NATS_CLIENT_PORT, namespace, other_namespace)
    # Rules that admit 4222 name their peers (no rule open to every source).
    for spec in nats:
        for rule in spec.get("ingress", []):
            assert rule.get("from"), rule
    # The servers route to each other (cluster, JetStream replication), and Prometheus reads their monitoring port
    # and exporter.
    assert _connects(policies, NATS_POD, NATS_POD, NATS_CLUSTER_PORT, namespace)
    assert not _connects(policies, NATS_POD, NATS_POD, NATS_CLIENT_PORT + 1, namespace)
    for port in (NATS_MONITOR_PORT, NATS_EXPORTER_PORT):
        assert _connects(policies, {}, NATS_POD, port, namespace, src_namespace="monitoring")
        assert not _connects(policies, API_POD, NATS_POD, port, namespace)
    # NATS opens nothing but its routes (and DNS).
    assert not _connects(policies, NATS_POD, API_POD, 8000, namespace)
    assert not _connects(policies, NATS_POD, {}, 443, namespace)


@needs_kustomize
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_updater_network_policy(overlay):
    """The updater's metrics only from Prometheus's namespace; it sends only to NATS (and DNS)."""
    namespace = EXPECTED[overlay]["namespace"]
    policies = _policies(_docs(overlay))
    assert _connects(policies, {}, UPDATER_POD, UPDATER_PORT, namespace, src_namespace="monitoring")
    assert not _connects(policies, {}, UPDATER_POD, UPDATER_PORT + 1, namespace, src_namespace="monitoring")
    assert not _connects(policies, API_POD, UPDATER_POD, UPDATER_PORT, namespace)
    assert not _connects(policies, {}, UPDATER_POD, UPDATER_PORT, namespace, src_namespace="default")
    for port in (443, 5432, 8000, NATS_CLUSTER_PORT):
        assert not _connects(policies, UPDATER_POD, {}, port, namespace), port
    assert not _connects(policies, UPDATER_POD, API_POD, 8000, namespace)
    updater_egress = [
        r
        for s in policies.values()
        if s["podSelector"] and _matches(s["podSelector"], UPDATER_POD)
        for r in s.get("egress", [])
    ]
    assert updater_egress == [
        {"to": [{"podSelector": {"matchLabels": NATS_POD}}], "ports": [{"protocol": "TCP", "port": NATS_CLIENT_PORT}]}
    ]


# -- NATS Helm values --------------------------------------------------------------------------------------------

# Top-level keys of the nats chart's 1.x values (nats-io/k8s helm/charts/nats/values.yaml); the 0.x layout had
# nats:, cluster:, exporter:, natsbox:, which 1.x ignores silently.
NATS_CHART_KEYS = {
    "global", "nameOverride", "fullnameOverride", "namespaceOverride", "config", "container", "reloader",
    "promExporter", "service", "statefulSet", "podTemplate", "headlessService", "configMap", "ingress",
    "podDisruptionBudget", "serviceAccount", "natsBox", "extraResources",
}  # fmt: skip


@pytest.fixture(scope="module")
def nats_values() -> dict:
    return yaml.safe_load((K8S_DIR / "nats" / "values.yaml").read_text())


def _quantity(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]i)?", str(value)).groups()
    return float(number) * 1024 ** {None: 0, "Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4}[unit]


def test_nats_values_use_the_chart_layout(nats_values):
    assert set(nats_values) <= NATS_CHART_KEYS, set(nats_values) - NATS_CHART_KEYS
    assert not {"nats", "cluster", "exporter", "natsbox", "auth"} & set(nats_values)
    # Release name "nats", so the Service and pod labels are the ones the manifests use.
    assert "fullnameOverride" not in nats_values and "nameOverride" not in nats_values


def test_nats_values_enable_jetstream_with_persistent_storage(nats_values):
    config = nats_values["config"]
    jetstream = config["jetstream"]
    assert jetstream["enabled"] is True
    store = jetstream["fileStore"]
    assert store["enabled"] is True and store["dir"].startswith("/")
    assert store["pvc"]["enabled"] is True
    size = _quantity(store["pvc"]["size"])
    assert size >= _quantity("5Gi")
    # JetStream's file store limit below the claim (the chart uses the claim's size when maxSize is unset).
    assert _quantity(store["maxSize"]) < size
    assert jetstream.get("memoryStore", {}).get("enabled") is False
    # A cluster JetStream can keep a quorum in: an odd number of servers, at least 3.
    assert config["cluster"]["enabled"] is True
    assert config["cluster"]["replicas"] >= 3 and config["cluster"]["replicas"] % 2 == 1
    # Monitoring: the chart's probes need it; Prometheus reads the exporter on the port the policy admits.
    assert config["monitor"] == {"enabled": True, "port": NATS_MONITOR_PORT}
    assert nats_values["promExporter"]["enabled"] is True
    assert nats_values["promExporter"]["port"] == NATS_EXPORTER_PORT
    annotations = nats_values["podTemplate"]["merge"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(NATS_EXPORTER_PORT)
    # nats-box would be one more client the NetworkPolicy does not admit.
    assert nats_values["natsBox"]["enabled"] is False


def test_nats_pods_are_bounded_and_unprivileged(nats_values):
    """Requests and limits on every container of the server pod, no privilege, non-root; the merged settings are
    real Kubernetes fields (validated as a pod, as the chart pastes them into its pod template)."""
    import kubernetes_validate

    containers = []
    for name, key in (("nats", "container"), ("reloader", "reloader"), ("prom-exporter", "promExporter")):
        merge = nats_values[key]["merge"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(merge["resources"][kind]), (key, kind)
        sc = merge["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}, key
        assert sc.get("privileged") is not True, key
        containers.append({"name": name, "image": "example.invalid/nats:1.0.0", **merge})
    pod_sc = nats_values["podTemplate"]["merge"]["spec"]["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] not in (None, 0)
    assert pod_sc["fsGroup"] not in (None, 0), "the JetStream claim must be writable by the non-root user"
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "nats-0", "annotations": nats_values["podTemplate"]["merge"]["metadata"]["annotations"]},
        "spec": {"securityContext": pod_sc, "containers": containers},
    }
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
    # GOMEMLIMIT below the server container's memory limit.
    limit = _quantity(nats_values["container"]["merge"]["resources"]["limits"]["memory"])
    assert _quantity(nats_values["container"]["env"]["GOMEMLIMIT"].replace("MiB", "Mi").replace("GiB", "Gi")) < limit


def test_the_docs_install_nats_as_the_release_the_manifests_expect():
    """docs/deployment.md installs the chart under the release name the NATS URL and the policies assume, with
    these values."""
    docs = (K8S_DIR.parent / "docs" / "deployment.md").read_text()
    installs = re.findall(r"helm (?:upgrade --install|install) (\S+) nats/nats\b([^\n]*)", docs)
    assert installs, "no helm install of nats/nats in docs/deployment.md"
    for release, rest in installs:
        assert release == NATS_RELEASE
        assert "-f k8s/nats/values.yaml" in rest
