from variant_etl.cli import process_main

raise SystemExit(process_main())
