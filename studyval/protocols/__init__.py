"""Protocol modules: the registered analyses of each study, from validated inputs to tables."""
