rule train:
    input:
        notebook=notebook("02_train"),
        data=rules.generate.output.data,
    # checkpoints/ and resume.json in the model folder are deliberately not outputs: Snakemake deletes
    # a killed job's outputs before rerunning it, and the rerun resumes training from those two.
    output:
        model=layout.model_file("{encoder}", "{seed}"),
        metrics=f"{layout.model_dir('{encoder}', '{seed}')}/metrics.json",
        html=report(layout.notebook_html("train_{encoder}_seed{seed}"), caption="../report/notebook.rst",
                    category="4. Notebooks", labels={"step": "train", "encoder": "{encoder}", "seed": "{seed}"}),
    params:
        nb=lambda wildcards: nb_params(
            data_dir=layout.DATA, out_dir=layout.model_dir(wildcards.encoder, wildcards.seed), encoder=wildcards.encoder,
            encoder_options=PIPELINE.encoders[wildcards.encoder], seed=int(wildcards.seed),
            training=PIPELINE.training.to_dict(),
        ),
    log:
        **job_logs("train_{encoder}_seed{seed}"),
    wildcard_constraints:
        encoder="|".join(ENCODERS),
        seed=r"\d+",
    threads: PIPELINE.training.devices  # one process per device (DDP), each given a share of these cores
    priority: 1  # the Table 1 chain is the longest path: start it before the studies
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK
