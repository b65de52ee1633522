"""The source port over an HL7 FHIR R4 server (`kind = "fhir"`): REST over a pooled httpx client,
under the published mapping (MAPPING.md)."""
