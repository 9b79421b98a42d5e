"""Asset bundles: what a notebook needs and touches (analysis), bundles generated from jobs and
notebooks, their offline validation, and test scaffolds that run a bundle's notebooks locally."""
