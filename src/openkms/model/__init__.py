"""The KMS service model, taken from botocore at run time, and validation against it."""

from openkms.model.service_model import ServiceModel, load_kms_model
from openkms.model.validation import validate_input

__all__ = ["ServiceModel", "load_kms_model", "validate_input"]
