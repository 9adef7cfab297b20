rule train:
    input:
        notebook=notebook("02_train"),
        data=rules.generate.output.data,
    # checkpoints/ and resume.json in the model folder are deliberately not outputs: Snakemake deletes
    # a killed job's outputs before rerunning it, and the rerun resumes training from those two.
    output:
        model=f"{RESULTS}/models/{{encoder}}/seed{{seed}}/model.pt",
        metrics=f"{RESULTS}/models/{{encoder}}/seed{{seed}}/metrics.json",
        html=report(f"{RESULTS}/notebooks/train_{{encoder}}_seed{{seed}}.html", caption="../report/notebook.rst",
                    category="4. Notebooks", labels={"step": "train", "encoder": "{encoder}", "seed": "{seed}"}),
    params:
        nb=lambda wildcards: nb_params(
            data_dir=DATA_DIR, out_dir=f"{RESULTS}/models/{wildcards.encoder}/seed{wildcards.seed}",
            encoder=wildcards.encoder, seed=int(wildcards.seed), encoder_options=config["encoders"][wildcards.encoder],
            **{k: v for k, v in config["training"].items() if k != "seeds"},
        ),
    log:
        notebook=f"{RESULTS}/logs/train_{{encoder}}_seed{{seed}}.ipynb",
        stdout=f"{RESULTS}/logs/train_{{encoder}}_seed{{seed}}.log",
    wildcard_constraints:
        encoder="|".join(ENCODERS),
        seed=r"\d+",
    threads: config["training"]["devices"]  # one process per device (DDP), each given a share of these cores
    priority: 1  # the Table 1 chain is the longest path: start it before the studies
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK
