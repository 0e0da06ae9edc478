from llm_perf_opt.cli import main

main()
