"""/api/: the versioned endpoints (``/api/v1/...``), the OpenAPI 3 schema (``/api/schema/``) and
the interactive docs (``/api/docs/``, Swagger UI from ninja's bundled static files: no CDN)."""

from django.urls import path
from ninja import NinjaAPI

from . import devices, problems
from .endpoints import router


class SignalboxAPI(NinjaAPI):
    """ninja's API with error responses documented as what they are: ``application/problem+json``."""

    def get_openapi_schema(self, *args, **kwargs):
        schema = super().get_openapi_schema(*args, **kwargs)
        for operations in schema["paths"].values():
            for operation in operations.values():
                for code, response in operation.get("responses", {}).items():
                    content = response.get("content") or {}
                    if int(code) >= 400 and "application/json" in content:
                        response["content"] = {problems.CONTENT_TYPE: content["application/json"]}
        return schema


api = SignalboxAPI(
    title="Signalbox API", version="1", urls_namespace="api", openapi_url="/schema/", docs_url="/docs/",
    description="Send notifications, manage recipients, read deliveries and campaigns. Errors are RFC 9457 "
                "problem details (application/problem+json).",
    parser=problems.StrictJSONParser(),
)
problems.install(api)
api.add_router("/v1/", router)
api.add_router("/v1/", devices.router)

urlpatterns = [path("", api.urls)]
