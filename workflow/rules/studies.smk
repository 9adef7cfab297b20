# Ablation studies (lib/timeblind/studies.py expands the config's studies section; the plan is
# in common.smk): the data sets and models they train, then one step per study that scores its
# points, writes its table and figure and logs an MLflow parent run with a child run per point.


rule study_data:
    input:
        notebook=notebook("01_generate"),
        tracking=rules.init_tracking.output,
    output:
        data=directory(f"{RESULTS}/studies/data/{{data_id}}"),
        html=f"{RESULTS}/notebooks/studies/data_{{data_id}}.html",
    params:
        nb=lambda wildcards, threads: nb_params(
            out_dir=f"{RESULTS}/studies/data/{wildcards.data_id}", preview="", workers=threads,
            seed=STUDY_DATA[wildcards.data_id].data["seed"],
            **{f"{split}_size": STUDY_DATA[wildcards.data_id].data[f"{split}_size"] for split in ("train", "val", "test")},
            stimulus={k: v for k, v in STUDY_DATA[wildcards.data_id].data.items() if k != "seed" and not k.endswith("_size")},
        ),
    log:
        notebook=f"{RESULTS}/logs/studies/data_{{data_id}}.ipynb",
        stdout=f"{RESULTS}/logs/studies/data_{{data_id}}.log",
    wildcard_constraints:
        data_id="[0-9a-f]{10}",
    threads: 1
    priority: 2  # cheap, and it unlocks study training: started late, it leaves one core idle at the end
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK


rule study_train:
    input:
        notebook=notebook("02_train"),
        data=lambda wildcards: study_model(wildcards).data_dir,
    output:
        model=f"{RESULTS}/studies/models/{{model_id}}/seed{{seed}}/model.pt",
        metrics=f"{RESULTS}/studies/models/{{model_id}}/seed{{seed}}/metrics.json",
        html=f"{RESULTS}/notebooks/studies/train_{{model_id}}_seed{{seed}}.html",
    params:
        nb=lambda wildcards, input: nb_params(
            data_dir=input.data, out_dir=f"{RESULTS}/studies/models/{wildcards.model_id}/seed{wildcards.seed}",
            encoder=study_model(wildcards).encoder, seed=int(wildcards.seed),
            encoder_options={**study_model(wildcards).options, "encoder": study_model(wildcards).kind},
            **{k: v for k, v in study_model(wildcards).training.items()},
        ),
    log:
        notebook=f"{RESULTS}/logs/studies/train_{{model_id}}_seed{{seed}}.ipynb",
        stdout=f"{RESULTS}/logs/studies/train_{{model_id}}_seed{{seed}}.log",
    wildcard_constraints:
        model_id=r"[A-Za-z0-9_]+-[0-9a-f]{10}",
        seed=r"\d+",
    threads: 1
    priority: 1  # the longest jobs after Table 1's: the grounding chain fills the cores around them
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK


rule study:
    input:
        notebook=notebook("08_study"),
        models=lambda wildcards: sorted({p.model.path for p in STUDY_POINTS if p.study == wildcards.study}),
    output:
        table=f"{RESULTS}/tables/study_{{study}}.csv",
        summary=report(f"{RESULTS}/tables/study_{{study}}_summary.csv", caption="../report/study_table.rst",
                       category="3. Studies", subcategory="{study}"),
        figure=report(f"{RESULTS}/figures/study_{{study}}.png", caption="../report/study_figure.rst",
                      category="3. Studies", subcategory="{study}"),
        svg=f"{RESULTS}/figures/study_{{study}}.svg",
        tests=directory(f"{RESULTS}/studies/{{study}}/tests"),
        html=report(f"{RESULTS}/notebooks/study_{{study}}.html", caption="../report/notebook.rst",
                    category="4. Notebooks", labels={"step": "study {study}", "encoder": "all", "seed": "all"}),
    params:
        nb=lambda wildcards, threads: nb_params(study=wildcards.study, config=STUDY_CONFIG,
                                                out_dir=f"{RESULTS}/studies/{wildcards.study}/tests",
                                                tables_dir=f"{RESULTS}/tables", figures_dir=f"{RESULTS}/figures",
                                                workers=threads),
    log:
        notebook=f"{RESULTS}/logs/study_{{study}}.ipynb",
        stdout=f"{RESULTS}/logs/study_{{study}}.log",
    wildcard_constraints:
        study="|".join(STUDIES) or "no-study",
    threads: 1
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK
