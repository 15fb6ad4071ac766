"""Case work: loading a multi-agency case from its FHIR record, applying a form, saving it back."""
