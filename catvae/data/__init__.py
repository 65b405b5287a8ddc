"""Datasets: BraTS volumes, the embedded phantom cohort, class folders and MedMNIST, all to one slice manifest."""
