from joe_agent.cli import main

raise SystemExit(main())
