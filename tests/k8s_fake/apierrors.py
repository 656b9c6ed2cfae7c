"""Kubernetes API errors as real metav1.Status objects (k8s.io/apimachinery/pkg/api/errors)."""

HTTP_REASON = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
    405: "MethodNotAllowed", 406: "NotAcceptable", 409: "AlreadyExists", 410: "Expired",
    415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
    503: "ServiceUnavailable", 504: "Timeout",
}


class ApiError(Exception):
    """An error answered with a Status object (kind Status, apiVersion v1, status Failure)."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self):
        st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": self.message, "reason": self.reason}
        if self.details is not None:
            st["details"] = self.details
        st["code"] = self.code
        return st


def qualified(res):
    """'jobs.batch' or 'pods' as the API server names a resource in messages."""
    return res.resource + ("." + res.group if res.group else "")


def _details(res, name=None):
    d = {}
    if name:
        d["name"] = name
    if res.group:
        d["group"] = res.group
    d["kind"] = res.resource
    return d


def not_found(res, name):
    return ApiError(404, "NotFound", '%s "%s" not found' % (qualified(res), name), _details(res, name))


def already_exists(res, name):
    return ApiError(409, "AlreadyExists", '%s "%s" already exists' % (qualified(res), name), _details(res, name))


def conflict(res, name, why="the object has been modified; please apply your changes to the latest "
                             "version and try again"):
    return ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": %s' % (qualified(res), name, why),
                    _details(res, name))


def invalid(res, name, causes):
    """422 Invalid; causes: list of {reason, message, field}."""
    parts = ["%s: %s" % (c["field"], c["message"]) if c.get("field") else c["message"] for c in causes]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    d = _details(res, name)
    d["kind"] = res.kind
    d["causes"] = causes
    return ApiError(422, "Invalid", '%s.%s "%s" is invalid: %s' % (res.kind, res.group or "", name or "", summary)
                    if res.group else '%s "%s" is invalid: %s' % (res.kind, name or "", summary), d)


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def forbidden(res, name, user, verb, namespace, subresource=""):
    what = qualified(res)
    if subresource:
        rname = res.resource + "/" + subresource
    else:
        rname = res.resource
    target = '%s "%s"' % (what, name) if name else what
    where = ' in the namespace "%s"' % namespace if namespace else " at the cluster scope"
    msg = ('%s is forbidden: User "%s" cannot %s resource "%s" in API group "%s"%s'
           % (target, user, verb, rname, res.group, where))
    return ApiError(403, "Forbidden", msg, _details(res, name))


def unauthorized():
    return ApiError(401, "Unauthorized", "Unauthorized")


def expired(message):
    return ApiError(410, "Expired", message)


def method_not_allowed():
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


def generic(code, message=None):
    reason = HTTP_REASON.get(code, "InternalError")
    if message is None:
        message = {500: "Internal error occurred: injected fault (k8s-fake)",
                   503: "the server is currently unable to handle the request (injected fault)",
                   429: "Too many requests, please try again later.",
                   504: "Timeout: request did not complete within the allotted timeout"}.get(
            code, "injected fault (k8s-fake)")
    headers = {"Retry-After": "1"} if code in (429, 503) else None
    return ApiError(code, reason, message, {"retryAfterSeconds": 1} if headers else None, headers)


def page_not_found():
    """The API server's answer for an unknown path (plain text, not a Status)."""
    e = ApiError(404, "NotFound", "404 page not found")
    e.plain = True
    return e
