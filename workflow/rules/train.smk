rule pretrain_reader:
    input:
        notebook=notebook("12_pretrain_reader"),
        data=rules.generate.output.data,
    output:
        reader=layout.reader_file(layout.TABLE1_DATA_NAME),
        metrics=f"{layout.reader_dir(layout.TABLE1_DATA_NAME)}/metrics.json",
        html=report(layout.notebook_html(f"readers/{layout.TABLE1_DATA_NAME}"), caption="../report/notebook.rst",
                    category="4. Notebooks", labels={"step": "pretrain reader", "encoder": "all", "seed": "0"}),
    params:
        nb=lambda wildcards, input: nb_params(data_dir=input.data, out_dir=layout.reader_dir(layout.TABLE1_DATA_NAME),
                                              reader=PIPELINE.training.reader, seed=0),
    log:
        **job_logs(f"readers/{layout.TABLE1_DATA_NAME}"),
    # One core: the studies do not wait for it and start beside it. Every Table 1 encoder waits for
    # it, but a second thread speeds it up less than twice, and on 2 cores it takes the studies' core.
    # (Not a share of workflow.cores: `snakemake --report` runs without --cores.)
    threads: 1
    priority: 3
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK


rule train:
    input:
        notebook=notebook("02_train"),
        data=rules.generate.output.data,
        reader=lambda wildcards: table1_reader() or [],
    # checkpoints/ and resume.json in the model folder are deliberately not outputs: Snakemake deletes
    # a killed job's outputs before rerunning it, and the rerun resumes training from those two.
    output:
        model=layout.model_file("{encoder}", "{seed}"),
        metrics=f"{layout.model_dir('{encoder}', '{seed}')}/metrics.json",
        curve=f"{layout.model_dir('{encoder}', '{seed}')}/{layout.LEARNING_CURVE}",
        html=report(layout.notebook_html("train_{encoder}_seed{seed}"), caption="../report/notebook.rst",
                    category="4. Notebooks", labels={"step": "train", "encoder": "{encoder}", "seed": "{seed}"}),
    params:
        nb=lambda wildcards: nb_params(
            data_dir=layout.DATA, out_dir=layout.model_dir(wildcards.encoder, wildcards.seed), encoder=wildcards.encoder,
            encoder_options=PIPELINE.encoders[wildcards.encoder], seed=int(wildcards.seed),
            reader=table1_reader(), training=PIPELINE.training.to_dict(),
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
