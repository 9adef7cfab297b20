# Where a STAVE model loses the figure (the first STAVE encoder of the config, its first seed).
STAVE_PROBED = next((e for e, o in config["encoders"].items() if o.get("encoder", e) == "stave"), None)


rule stave_probe:
    input:
        notebook=notebook("13_stave_probe"),
        data=rules.generate.output.data,
        model=layout.model_file(STAVE_PROBED, SEEDS[0]) if STAVE_PROBED else [],
    output:
        png=report(f"{FIGURES}/stave_probe.png", caption="../report/stave_probe.rst", category="2. Result"),
        svg=f"{FIGURES}/stave_probe.svg",
        table=f"{TABLES}/stave_probe.csv",
        html=report(layout.notebook_html("stave_probe"), caption="../report/notebook.rst", category="4. Notebooks",
                    labels={"step": "stave_probe", "encoder": str(STAVE_PROBED), "seed": str(SEEDS[0])}),
    params:
        nb=lambda wildcards, input: nb_params(data_dir=layout.DATA, model=input.model, figure=f"{FIGURES}/stave_probe",
                                              table=f"{TABLES}/stave_probe.csv", split="test", clips=96),
    log:
        **job_logs("stave_probe"),
    threads: 1
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK
