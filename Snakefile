# catvae: do synthetic images from VAEs and cross-attention VAEs help a CNN on imbalanced medical images?
#
#   snakemake --cores 2                                  # the embedded demo (config/config.yaml)
#   snakemake --cores 8 --configfile config/paper.yaml   # the paper's settings
#   snakemake --profile profiles/slurm ...               # the same DAG on a SLURM cluster
#
# Stages, one rule file each: data -> generators -> classifier -> report; paper_protocol.smk is the reference's
# protocol apart (classifier.paper_protocol). Outputs go to results/<dataset.name>/.

from snakemake.utils import min_version

min_version("9.0")


# The demo config is the default only when no --configfile is given. Were it loaded always, Snakemake would merge
# the given file over it, and every key that file leaves out would keep the demo's value instead of the schema's
# default (a config/paper.yaml run sampled the conditional VAE from the demo's Gaussian mixture). The path is read
# in the working directory, so `snakemake --directory .test` runs the tiny test study in .test/config/config.yaml.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/generators.smk"
include: "workflow/rules/classifier.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/paper_protocol.smk"


rule all:
    default_target: True
    input:
        study_targets(),
