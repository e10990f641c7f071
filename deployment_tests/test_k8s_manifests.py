"""The Kubernetes manifests: every overlay renders with kustomize, every rendered document is valid against the
Kubernetes JSON schemas (kubernetes-validate, offline, strict), and the API workload carries the security and
operability settings the deployment promises. Also checks the Dagster Helm values (k8s/dagster/values.yaml): the
same security standard on the webserver, daemon, code server and run pods, and the same run pods as
dagster.prod.yaml."""

from __future__ import annotations

import copy

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
    # The API has no egress beyond DNS: every egress rule that applies to its pods is port 53 only.
    api_egress_ports = {
        p["port"] for s in policies.values() if _selects_api(s) for r in s.get("egress", []) for p in r["ports"]
    }
    assert api_egress_ports == {53}
    assert all(r.get("ports") for s in policies.values() if _selects_api(s) for r in s.get("egress", []))


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
