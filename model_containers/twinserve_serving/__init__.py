"""twinserve_serving: one inference server for Amazon SageMaker and Azure ML containers.

Run it as the image does: ``python -m twinserve_serving serve``. Handlers may raise the errors
exported here to choose the HTTP status the caller sees.
"""

from .errors import BadRequest, NotAcceptable, PayloadTooLarge, ServingError, UnsupportedMediaType  # noqa: F401
from .handler import RequestContext  # noqa: F401

__all__ = ["BadRequest", "NotAcceptable", "PayloadTooLarge", "RequestContext", "ServingError", "UnsupportedMediaType"]
