# Temporal grounding (lib/timeblind/grounding_plan.py; the plan is in common.smk): event videos,
# then per encoder and seed the frame tokens and the align stage, per variant the time and
# instruct stages (Grounded-VideoLLM's progressive training, one job and MLflow run each), and
# the table over every run.


rule grounding_data:
    input:
        notebook=notebook("09_grounding_data"),
        tracking=rules.init_tracking.output,
    output:
        data=directory(grounding_plan.DATA_DIR),
        html=f"{RESULTS}/notebooks/grounding/data.html",
    params:
        nb=lambda wildcards, threads: nb_params(out_dir=grounding_plan.DATA_DIR, data=grounding_plan.data_section(config),
                                                events=G["events"], workers=threads),
    log:
        notebook=f"{RESULTS}/logs/grounding/data.ipynb",
        stdout=f"{RESULTS}/logs/grounding/data.log",
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
        decoder=f"{GROUNDING}/align/{{encoder}}/seed{{seed}}/decoder.pt",
        features=f"{GROUNDING}/align/{{encoder}}/seed{{seed}}/features.pt",
        metrics=f"{GROUNDING}/align/{{encoder}}/seed{{seed}}/metrics.json",
        html=f"{RESULTS}/notebooks/grounding/align_{{encoder}}_seed{{seed}}.html",
    params:
        nb=lambda wildcards: grounding_stage_params(wildcards, "align", grounding_run(wildcards).stage_dir("align"), ""),
    log:
        notebook=f"{RESULTS}/logs/grounding/align_{{encoder}}_seed{{seed}}.ipynb",
        stdout=f"{RESULTS}/logs/grounding/align_{{encoder}}_seed{{seed}}.log",
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
        decoder=f"{GROUNDING}/runs/{{variant}}-{{encoder}}/seed{{seed}}/{{stage}}/decoder.pt",
        metrics=f"{GROUNDING}/runs/{{variant}}-{{encoder}}/seed{{seed}}/{{stage}}/metrics.json",
        html=f"{RESULTS}/notebooks/grounding/{{stage}}_{{variant}}-{{encoder}}_seed{{seed}}.html",
    params:
        nb=lambda wildcards: grounding_stage_params(wildcards, wildcards.stage,
                                                    grounding_run(wildcards).stage_dir(wildcards.stage),
                                                    previous_grounding_stage(wildcards)),
    log:
        notebook=f"{RESULTS}/logs/grounding/{{stage}}_{{variant}}-{{encoder}}_seed{{seed}}.ipynb",
        stdout=f"{RESULTS}/logs/grounding/{{stage}}_{{variant}}-{{encoder}}_seed{{seed}}.log",
    wildcard_constraints:
        variant="|".join(GROUNDING_VARIANTS),
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
        table=f"{RESULTS}/tables/grounding.csv",
        summary=f"{RESULTS}/tables/grounding_summary.csv",
        shown=report(f"{RESULTS}/tables/grounding_table.csv", caption="../report/grounding_table.rst",
                     category="2. Result", subcategory="Temporal grounding"),
        figure=report(f"{RESULTS}/figures/grounding.png", caption="../report/grounding_figure.rst",
                      category="2. Result", subcategory="Temporal grounding"),
        spans=report(f"{RESULTS}/figures/grounding_spans.png", caption="../report/grounding_spans.rst",
                     category="2. Result", subcategory="Temporal grounding"),
        html=report(f"{RESULTS}/notebooks/grounding_table.html", caption="../report/notebook.rst",
                    category="4. Notebooks", labels={"step": "grounding table", "encoder": "all", "seed": "all"}),
    params:
        nb=lambda wildcards: nb_params(runs=[run.stage_dir("instruct") for run in GROUNDING_RUNS],
                                       data_dir=grounding_plan.DATA_DIR, tables_dir=f"{RESULTS}/tables",
                                       figures_dir=f"{RESULTS}/figures", first_encoder=G["encoders"][0] if G["encoders"] else "",
                                       best=G["best"]),
    log:
        notebook=f"{RESULTS}/logs/grounding_table.ipynb",
        stdout=f"{RESULTS}/logs/grounding_table.log",
    threads: 1
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK
