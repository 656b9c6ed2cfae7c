/* sx_check_main.h - run one check Suite and turn its result into an exit
 * code; shared by every test executable. */
#ifndef SX_CHECK_MAIN_H
#define SX_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>

static inline int sx_check_run(Suite *suite)
{
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
