from .cli import main

if __name__ == "__main__":  # guard: dask LocalCluster workers re-import this module
    main(prog_name="geohsr")
