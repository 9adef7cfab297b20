rule gallery:
    input:
        notebook=notebook("07_gallery"),
        data=rules.generate.output.data,
        models=all_models(),
    output:
        png=report(f"{RESULTS}/figures/gallery.png", caption="../report/gallery.rst", category="2. Result"),
        svg=f"{RESULTS}/figures/gallery.svg",
        table=f"{RESULTS}/tables/gallery.csv",
        html=report(f"{RESULTS}/notebooks/gallery.html", caption="../report/notebook.rst", category="4. Notebooks",
                    labels={"step": "gallery", "encoder": "all", "seed": "all"}),
    params:
        nb=lambda wildcards, input: nb_params(data_dir=DATA_DIR, models=list(input.models),
                                              figure=f"{RESULTS}/figures/gallery", table=f"{RESULTS}/tables/gallery.csv",
                                              split="test", per_category=2, samples=16, noise=0.1),
    log:
        notebook=f"{RESULTS}/logs/gallery.ipynb",
        stdout=f"{RESULTS}/logs/gallery.log",
    threads: 1
    conda:
        "../../envs/timeblind.yaml"
    shell:
        RUN_NOTEBOOK
