"""The BraTS-layout dataset kinds (`brats`, and the embedded `phantom` cohort written in the same layout): finding
subjects and files (`discover`), reading and normalising volumes (`normalize`), checking them (`validate`),
choosing and labelling slices (`slicing`), extracting slices (`extract`), and the phantom cohort (`phantom`,
`phantom_tumor`). What every kind shares lives in `catvae.data` itself (`images`, `manifest`, `publish`, `policy`,
`split`, `kinds`)."""
