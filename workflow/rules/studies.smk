# Ablation studies (lib/timeblind/plan/studies.py expands the config's studies section; the plan is
# in common.smk): the data sets and models they train, then one step per study that scores its
# points, writes its table and figure and logs an MLflow parent run with a child run per point.


use rule generate as study_data with:
    output:
        data=directory(layout.study_data_dir("{data_id}")),
        html=layout.notebook_html("studies/data_{data_id}"),
    params:
        nb=lambda wildcards, threads: nb_params(out_dir=layout.study_data_dir(wildcards.data_id), preview="",
                                                workers=threads, **data_params(STUDY_DATA[wildcards.data_id].data)),
    log:
        **job_logs("studies/data_{data_id}"),
    wildcard_constraints:
        data_id="[0-9a-f]{10}",
    threads: 1  # a few seconds of work: asking for both cores, it waited for both to be free and ran last
    priority: 0  # on one core it fits any gap; above 0, two of them outrank the Table 1 chain's next job


use rule pretrain_reader as study_reader with:
    input:
        notebook=notebook("12_pretrain_reader"),
        data=lambda wildcards: layout.study_data_dir(wildcards.data_id),
    output:
        reader=layout.reader_file("{data_id}"),
        metrics=f"{layout.reader_dir('{data_id}')}/metrics.json",
        html=layout.notebook_html("readers/{data_id}"),
    params:
        nb=lambda wildcards, input: nb_params(data_dir=input.data, out_dir=layout.reader_dir(wildcards.data_id),
                                              reader=reader_config(wildcards.data_id), seed=0),
    log:
        **job_logs("readers/{data_id}"),
    wildcard_constraints:
        data_id="[0-9a-f]{10}",
    threads: 1
    priority: 1


use rule train as study_train with:
    input:
        notebook=notebook("02_train"),
        data=lambda wildcards: study_model(wildcards).data_dir,
        reader=lambda wildcards: study_model(wildcards).reader or [],
    output:
        model=layout.study_model_file("{model_id}", "{seed}"),
        metrics=f"{layout.study_model_dir('{model_id}', '{seed}')}/metrics.json",
        html=layout.notebook_html("studies/train_{model_id}_seed{seed}"),
    params:
        nb=lambda wildcards, input: nb_params(
            data_dir=input.data, out_dir=layout.study_model_dir(wildcards.model_id, wildcards.seed),
            encoder=study_model(wildcards).encoder, seed=int(wildcards.seed), reader=study_model(wildcards).reader,
            encoder_options={**study_model(wildcards).options, "encoder": study_model(wildcards).kind},
            training=study_model(wildcards).training,
        ),
    log:
        **job_logs("studies/train_{model_id}_seed{seed}"),
    wildcard_constraints:
        model_id=r"[A-Za-z0-9_]+-[0-9a-f]{10}",
        seed=r"\d+",
    threads: 1
    priority: 1  # the longest jobs after Table 1's: the grounding chain fills the cores around them


rule study:
    input:
        notebook=notebook("08_study"),
        models=lambda wildcards: sorted({p.model.path for p in STUDY_POINTS if p.study == wildcards.study}),
    output:
        table=f"{TABLES}/study_{{study}}.csv",
        summary=report(f"{TABLES}/study_{{study}}_summary.csv", caption="../report/study_table.rst",
                       category="3. Studies", subcategory="{study}"),
        figure=report(f"{FIGURES}/study_{{study}}.png", caption="../report/study_figure.rst",
                      category="3. Studies", subcategory="{study}"),
        svg=f"{FIGURES}/study_{{study}}.svg",
        tests=directory(layout.study_tests_dir("{study}")),
        html=report(layout.notebook_html("study_{study}"), caption="../report/notebook.rst",
                    category="4. Notebooks", labels={"step": "study {study}", "encoder": "all", "seed": "all"}),
    params:
        nb=lambda wildcards, threads: nb_params(study=wildcards.study, config=STUDY_CONFIG,
                                                out_dir=layout.study_tests_dir(wildcards.study),
                                                tables_dir=TABLES, figures_dir=FIGURES, workers=threads),
    log:
        **job_logs("study_{study}"),
    wildcard_constraints:
        study="|".join(STUDIES) or "no-study",
    threads: 1
    priority: 2  # the snr study scores the Table 1 models (minutes): beside the export, not after the gallery
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK
