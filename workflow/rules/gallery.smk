rule gallery:
    input:
        notebook=notebook("07_gallery"),
        data=rules.generate.output.data,
        models=all_models(),
    output:
        png=report(f"{FIGURES}/gallery.png", caption="../report/gallery.rst", category="2. Result"),
        svg=f"{FIGURES}/gallery.svg",
        table=f"{TABLES}/gallery.csv",
        html=report(layout.notebook_html("gallery"), caption="../report/notebook.rst", category="4. Notebooks",
                    labels={"step": "gallery", "encoder": "all", "seed": "all"}),
    params:
        nb=lambda wildcards, input: nb_params(data_dir=layout.DATA, models=list(input.models),
                                              figure=f"{FIGURES}/gallery", table=f"{TABLES}/gallery.csv",
                                              split="test", lexicon=PIPELINE.reading["lexicon"],
                                              **PIPELINE.gallery),
    log:
        **job_logs("gallery"),
    threads: 1
    priority: 1  # among the longest jobs once Table 1's models exist: started late, it ends the run alone
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK
