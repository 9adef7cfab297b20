# Temporal grounding (lib/timeblind/plan/grounding.py; the plan is in common.smk): event videos,
# then per encoder and seed the frame tokens and the align stage, per variant the time and
# instruct stages (Grounded-VideoLLM's progressive training, one job and MLflow run each), and
# the table over every run.


rule grounding_data:
    input:
        notebook=notebook("09_grounding_data"),
        tracking=rules.init_tracking.output,
    output:
        data=directory(layout.GROUNDING_DATA),
        html=layout.notebook_html("grounding/data"),
    params:
        nb=lambda wildcards, threads: nb_params(out_dir=layout.GROUNDING_DATA, data=grounding_plan.data_section(config),
                                                events=G["events"], workers=threads),
    log:
        **job_logs("grounding/data"),
    threads: 1
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK


rule grounding_align:
    input:
        notebook=notebook("10_grounding_stage"),
        data=rules.grounding_data.output.data,
        encoder=lambda wildcards: grounding_run(wildcards).model.path,
    output:
        decoder=f"{layout.grounding_align_dir('{encoder}', '{seed}')}/decoder.pt",
        features=f"{layout.grounding_align_dir('{encoder}', '{seed}')}/features.pt",
        metrics=f"{layout.grounding_align_dir('{encoder}', '{seed}')}/metrics.json",
        html=layout.notebook_html("grounding/align_{encoder}_seed{seed}"),
    params:
        nb=lambda wildcards: grounding_stage_params(wildcards, "align", grounding_run(wildcards).stage_dir("align"), ""),
    log:
        **job_logs("grounding/align_{encoder}_seed{seed}"),
    wildcard_constraints:
        encoder="|".join(G["encoders"]) or "no-encoder",
        seed=r"\d+",
    threads: 1
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK


rule grounding_stage:
    input:
        notebook=notebook("10_grounding_stage"),
        data=rules.grounding_data.output.data,
        previous=lambda wildcards: f"{previous_grounding_stage(wildcards)}/decoder.pt",
        features=lambda wildcards: f"{grounding_run(wildcards).stage_dir('align')}/features.pt",
    output:
        decoder=f"{layout.grounding_stage_dir('{variant}-{encoder}', '{seed}', '{stage}')}/decoder.pt",
        metrics=f"{layout.grounding_stage_dir('{variant}-{encoder}', '{seed}', '{stage}')}/metrics.json",
        html=layout.notebook_html("grounding/{stage}_{variant}-{encoder}_seed{seed}"),
    params:
        nb=lambda wildcards: grounding_stage_params(wildcards, wildcards.stage,
                                                    grounding_run(wildcards).stage_dir(wildcards.stage),
                                                    previous_grounding_stage(wildcards)),
    log:
        **job_logs("grounding/{stage}_{variant}-{encoder}_seed{seed}"),
    wildcard_constraints:
        variant="|".join(grounding_plan.VARIANTS),
        encoder="|".join(G["encoders"]) or "no-encoder",
        stage="time|instruct",
        seed=r"\d+",
    threads: 1
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK


rule grounding_table:
    input:
        notebook=notebook("11_grounding_table"),
        data=rules.grounding_data.output.data,
        runs=[f"{run.stage_dir('instruct')}/metrics.json" for run in GROUNDING_RUNS],
    output:
        table=f"{TABLES}/grounding.csv",
        summary=f"{TABLES}/grounding_summary.csv",
        shown=report(f"{TABLES}/grounding_table.csv", caption="../report/grounding_table.rst",
                     category="2. Result", subcategory="Temporal grounding"),
        figure=report(f"{FIGURES}/grounding.png", caption="../report/grounding_figure.rst",
                      category="2. Result", subcategory="Temporal grounding"),
        spans=report(f"{FIGURES}/grounding_spans.png", caption="../report/grounding_spans.rst",
                     category="2. Result", subcategory="Temporal grounding"),
        html=report(layout.notebook_html("grounding_table"), caption="../report/notebook.rst",
                    category="4. Notebooks", labels={"step": "grounding table", "encoder": "all", "seed": "all"}),
    params:
        nb=lambda wildcards: nb_params(runs=[run.stage_dir("instruct") for run in GROUNDING_RUNS],
                                       data_dir=layout.GROUNDING_DATA, tables_dir=TABLES, figures_dir=FIGURES,
                                       first_encoder=G["encoders"][0] if G["encoders"] else "", best=G["best"]),
    log:
        **job_logs("grounding_table"),
    threads: 1
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK
