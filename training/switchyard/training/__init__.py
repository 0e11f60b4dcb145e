"""Building the classifier model (`switchyard-classifier train`); needs classifier-train."""
