"""protocode: clinical-trial protocols as code."""
