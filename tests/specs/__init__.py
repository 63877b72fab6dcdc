"""Vendor specifications the tests check the emulators and connectors against.

Copied into the repository so that a fresh clone tests the same thing everywhere:

* ``workday/Human_Resources.wsdl`` — Workday's published Human_Resources web service WSDL
  (``Get_Workers`` and friends); zeep parses it, and the SOAP requests okrsync sends and the
  responses the sandbox serves are validated against its schema.
* ``successfactors/sample-metadata.xml`` and ``sample-error.json`` — a SuccessFactors OData v2
  ``$metadata`` document and an error body as SAP returns them.
"""

from pathlib import Path

SPECS = Path(__file__).resolve().parent
WORKDAY_WSDL = SPECS / "workday" / "Human_Resources.wsdl"
SF_SAMPLE_METADATA = SPECS / "successfactors" / "sample-metadata.xml"
SF_SAMPLE_ERROR = SPECS / "successfactors" / "sample-error.json"
