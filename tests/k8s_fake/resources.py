"""The resources k8s-fake serves, as the discovery documents describe them."""

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


class ResInfo:
    def __init__(self, group, version, resource, kind, namespaced, short_names=(), verbs=ALL_VERBS,
                 categories=(), singular=None, field_selectors=()):
        self.group = group
        self.version = version
        self.resource = resource
        self.kind = kind
        self.namespaced = namespaced
        self.short_names = list(short_names)
        self.verbs = list(verbs)
        self.categories = list(categories)
        self.singular = singular or kind.lower()
        # field selectors the real server supports for this resource, besides metadata.name/namespace
        self.field_selectors = ("metadata.name", "metadata.namespace") + tuple(field_selectors)

    @property
    def api_version(self):
        return self.group + "/" + self.version if self.group else self.version

    @property
    def list_kind(self):
        return self.kind + "List"

    @property
    def base_path(self):
        return "/apis/%s/%s" % (self.group, self.version) if self.group else "/api/" + self.version

    def __repr__(self):
        return "<%s>" % self.resource


PODS = ResInfo("", "v1", "pods", "Pod", True, ["po"], categories=["all"],
               field_selectors=("spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                                "spec.serviceAccountName", "spec.hostNetwork", "status.phase",
                                "status.podIP", "status.podIPs", "status.nominatedNodeName"))
SECRETS = ResInfo("", "v1", "secrets", "Secret", True, field_selectors=("type",))
CONFIGMAPS = ResInfo("", "v1", "configmaps", "ConfigMap", True, ["cm"])
NAMESPACES = ResInfo("", "v1", "namespaces", "Namespace", False, ["ns"],
                     verbs=["create", "delete", "get", "list", "patch", "update", "watch"],
                     field_selectors=("status.phase",))
EVENTS = ResInfo("", "v1", "events", "Event", True, ["ev"],
                 field_selectors=("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                                  "involvedObject.uid", "involvedObject.apiVersion",
                                  "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
                                  "reportingComponent", "source", "type"))
SERVICEACCOUNTS = ResInfo("", "v1", "serviceaccounts", "ServiceAccount", True, ["sa"])
JOBS = ResInfo("batch", "v1", "jobs", "Job", True, categories=["all"], field_selectors=("status.successful",))
PRIORITYCLASSES = ResInfo("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False, ["pc"])

ALL = [PODS, SECRETS, CONFIGMAPS, NAMESPACES, EVENTS, SERVICEACCOUNTS, JOBS, PRIORITYCLASSES]
BY_KIND = {r.kind: r for r in ALL}

# group -> version -> {resource: ResInfo}
GROUPS = {}
for _r in ALL:
    GROUPS.setdefault(_r.group, {}).setdefault(_r.version, {})[_r.resource] = _r

# subresources served: (resource, sub) -> verbs
SUBRESOURCES = {("pods", "log"): ["get"], ("pods", "status"): ["get"], ("jobs", "status"): ["get"]}


def lookup(group, version, resource):
    return GROUPS.get(group, {}).get(version, {}).get(resource)
